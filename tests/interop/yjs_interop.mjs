// Two real JavaScript Yjs editors (yjs + y-websocket's WebsocketProvider, ws as the
// WebSocket) against a y-websocket server: do they sync, see a Python edit, and converge?
//
//   node yjs_interop.mjs ws://127.0.0.1:4001 <document> <text-python-wrote>
//
// Exit 0 and one JSON line {"ok": true, "text": ...} on stdout when both providers synced,
// both saw the Python client's text, both inserted their own edit and both documents hold
// the same text containing every edit. Anything else: exit 1 with the reason on stderr.
// The pytest side (test_yjs_interop.py) then checks that the Python client sees the JS edits.

import WebSocket from 'ws'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'

const [serverUrl, room, pythonText] = process.argv.slice(2)
const TIMEOUT_MS = 20000
const TEXT = 'codesync'

if (!serverUrl || !room || pythonText === undefined) {
  console.error('usage: node yjs_interop.mjs <ws-url> <document> <text-python-wrote>')
  process.exit(2)
}

const fail = (reason) => {
  console.error(`interop failed: ${reason}`)
  process.exit(1)
}
const deadline = setTimeout(() => fail(`no result within ${TIMEOUT_MS} ms`), TIMEOUT_MS)

// Resolve when predicate() holds, re-checked on every change of the document.
const until = (doc, predicate, what) => new Promise((resolve, reject) => {
  const check = () => {
    if (predicate()) {
      doc.off('update', check)
      resolve()
    }
  }
  doc.on('update', check)
  check()
  setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), TIMEOUT_MS)
})

const synced = (provider) => new Promise((resolve) => {
  if (provider.synced) return resolve()
  provider.once('sync', (state) => state && resolve())
})

const editors = ['js-one', 'js-two'].map((name) => {
  const doc = new Y.Doc()
  const provider = new WebsocketProvider(serverUrl, room, doc, {
    WebSocketPolyfill: WebSocket,
    disableBc: true,
    resyncInterval: -1
  })
  provider.on('connection-close', (event) => {
    if (event && provider.shouldConnect) console.error(`${name}: server closed the socket with ${event.code}`)
  })
  return { name, doc, text: doc.getText(TEXT), provider }
})

try {
  await Promise.all(editors.map((e) => synced(e.provider)))
  // Python -> JS: what the pycrdt client wrote before we connected arrived with the sync.
  for (const e of editors) {
    await until(e.doc, () => e.text.toString().includes(pythonText), `${e.name} to see the Python text`)
  }
  editors[0].provider.awareness.setLocalStateField('user', { name: 'js-one', color: '#0a0' })
  for (const e of editors) e.text.insert(0, `${e.name};`)
  // JS -> JS through the server: both docs hold both edits and agree.
  for (const e of editors) {
    await until(e.doc, () => editors.every((o) => e.text.toString().includes(`${o.name};`)), `${e.name} to converge`)
  }
  const texts = editors.map((e) => e.text.toString())
  if (texts[0] !== texts[1]) fail(`documents differ: ${JSON.stringify(texts)}`)
  console.log(JSON.stringify({ ok: true, text: texts[0] }))
  for (const e of editors) e.provider.destroy()
  clearTimeout(deadline)
  process.exit(0)
} catch (err) {
  fail(err.message)
}
