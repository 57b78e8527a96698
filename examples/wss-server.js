'use strict';

// A secure (wss://) echo server on an https.Server. The certificate in examples/tls/ is
// self-signed for localhost and 127.0.0.1: fine for trying it out, never for production.
// Clients must trust it or, for a local test only, skip verification.
//
//   node examples/wss-server.js --port 8443
//   node -e "const W=require('ws');const c=new W('wss://127.0.0.1:8443',{rejectUnauthorized:false});c.on('open',()=>c.send('hi'));c.on('message',m=>{console.log(String(m));c.close()})"

const fs = require('fs');
const https = require('https');
const path = require('path');
const { parseArgs } = require('util');
const { WebSocketServer } = require('..');

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '8443' },
    cert: { type: 'string', default: path.join(__dirname, 'tls', 'cert.pem') },
    key: { type: 'string', default: path.join(__dirname, 'tls', 'key.pem') }
  }
});

const server = https.createServer({
  cert: fs.readFileSync(args.cert),
  key: fs.readFileSync(args.key)
});

const wss = new WebSocketServer({ server });
wss.on('connection', (ws, req) => {
  ws.send(`hello ${req.socket.remoteAddress}, this connection is encrypted`);
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});

server.listen(Number(args.port), '127.0.0.1', () => {
  console.log(`listening wss://127.0.0.1:${server.address().port}`);
});
