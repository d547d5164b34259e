// The upstream y-websocket server on a port chosen by the OS, printed as one JSON line.
// Usage: node serve.mjs [host]   ->   {"port": 43127}
// Upstream's own bin/server.js cannot listen on port 0 and report it, hence this wrapper.
// 'ws' is upstream's own dependency (6.x), used the way upstream's server.js uses it.
import http from 'http'
import WebSocket from 'ws'
import { setupWSConnection } from '@y/websocket-server/utils'

const host = process.argv[2] || '127.0.0.1'
const wss = new WebSocket.Server({ noServer: true })
wss.on('connection', setupWSConnection)
const server = http.createServer((_req, res) => { res.writeHead(200); res.end('okay') })
server.on('upgrade', (req, socket, head) => {
  wss.handleUpgrade(req, socket, head, ws => wss.emit('connection', ws, req))
})
server.listen(0, host, () => {
  console.log(JSON.stringify({ port: server.address().port }))
})
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0))
