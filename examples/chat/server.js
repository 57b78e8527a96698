'use strict';

// A chat room server: one http.Server serves the page (public/) and the WebSocket endpoint
// (/chat). Rooms are topics: a message is framed once and published to everyone in the room.
//
//   node examples/chat/server.js --port 8080 [--host 127.0.0.1]
//   then open http://127.0.0.1:8080/ in two browser tabs
//
// Protocol: every message is a JSON text {"event": name, "data": object}, like socket.io's
// named events.
//   client -> server  join {nick, room}        once, first
//                     message {text}
//   server -> client  joined {room, nick, history: [{nick, text, at}, ...]}   (last 50 lines)
//                     message {nick, text, at}                               (to the room)
//                     notice {text}   "alice joined" / "alice left"          (to the room)
// A client that breaks the protocol is closed with 1003 (binary data) or 1008 (anything else),
// the reason saying what was wrong.

const fs = require('fs');
const http = require('http');
const path = require('path');
const { parseArgs } = require('util');
const { WebSocketServer } = require('../..');

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '8080' },
    host: { type: 'string', default: '127.0.0.1' }
  }
});

const HISTORY_LINES = 50;
const MAX_NICK = 32;
const MAX_TEXT = 500;
const MAX_ROOMS = 1000;
const ROOM_NAME = /^[\p{L}\p{N}_-]{1,32}$/u;

// The page, read once. Only these files are served: no path from the request reaches fs.
const publicDir = path.join(__dirname, 'public');
const files = {
  '/': { type: 'text/html; charset=utf-8', body: fs.readFileSync(path.join(publicDir, 'index.html')) },
  '/chat.js': {
    type: 'text/javascript; charset=utf-8',
    body: fs.readFileSync(path.join(publicDir, 'chat.js'))
  }
};

const server = http.createServer((req, res) => {
  const file = files[new URL(req.url, 'http://localhost').pathname];
  if (req.method !== 'GET' || file === undefined) {
    res.writeHead(404, { 'Content-Type': 'text/plain' });
    res.end('not found\n');
    return;
  }
  res.writeHead(200, { 'Content-Type': file.type, 'Content-Length': file.body.length });
  res.end(file.body);
});

const wss = new WebSocketServer({
  server,
  path: '/chat',
  maxPayload: 16 * 1024, // a chat line is small; anything bigger is closed with 1009
  heartbeat: true, // drop connections that went away without a close (laptop lid, lost Wi-Fi)
  // Browsers offer permessage-deflate; JSON chat lines compress well. No context takeover on
  // our side: one shared zlib stream serves every connection, so idle rooms cost no memory.
  perMessageDeflate: { serverNoContextTakeover: true, threshold: 256 }
});

/** room name -> the last HISTORY_LINES message lines; kept after a room empties. */
const histories = new Map();

function topicOf(room) {
  return `room:${room}`;
}

function envelope(event, data) {
  return JSON.stringify({ event, data });
}

/** Makes room for one more history, dropping the oldest room nobody is in. */
function historyOf(room) {
  let history = histories.get(room);
  if (history !== undefined) return history;
  if (histories.size >= MAX_ROOMS) {
    for (const name of histories.keys()) {
      if (wss.subscriberCount(topicOf(name)) === 0) {
        histories.delete(name);
        break;
      }
    }
    if (histories.size >= MAX_ROOMS) return null;
  }
  histories.set(room, (history = []));
  return history;
}

/** A trimmed string of 1..max characters with no control characters, or null. */
function cleanText(value, max) {
  if (typeof value !== 'string') return null;
  const text = value.trim();
  if (text.length === 0 || text.length > max || /[\p{Cc}]/u.test(text)) return null;
  return text;
}

wss.on('connection', (ws) => {
  let member = null; // { nick, room } once joined

  const fail = (code, reason) => ws.close(code, reason);

  ws.on('message', (data, isBinary) => {
    if (isBinary) return fail(1003, 'binary messages are not supported');
    let event;
    let payload;
    try {
      ({ event, data: payload } = JSON.parse(data.toString()));
    } catch {
      return fail(1008, 'not JSON');
    }
    if (payload === null || typeof payload !== 'object') return fail(1008, 'data must be an object');

    if (event === 'join') {
      if (member !== null) return fail(1008, 'already joined');
      const nick = cleanText(payload.nick, MAX_NICK);
      if (nick === null) return fail(1008, `nick must be 1-${MAX_NICK} characters`);
      if (typeof payload.room !== 'string' || !ROOM_NAME.test(payload.room)) {
        return fail(1008, 'room must be 1-32 letters, digits, - or _');
      }
      const history = historyOf(payload.room);
      if (history === null) return fail(1008, 'too many rooms');
      member = { nick, room: payload.room };
      ws.send(envelope('joined', { room: member.room, nick, history }));
      ws.subscribe(topicOf(member.room));
      wss.publish(topicOf(member.room), envelope('notice', { text: `${nick} joined` }));
    } else if (event === 'message') {
      if (member === null) return fail(1008, 'join first');
      const text = cleanText(payload.text, MAX_TEXT);
      if (text === null) return fail(1008, `text must be 1-${MAX_TEXT} characters`);
      const line = { nick: member.nick, text, at: Date.now() };
      const history = histories.get(member.room);
      if (history !== undefined) {
        history.push(line);
        if (history.length > HISTORY_LINES) history.shift();
      }
      wss.publish(topicOf(member.room), envelope('message', line));
    } else {
      fail(1008, 'unknown event');
    }
  });

  // Subscriptions end with the connection, so the notice goes to everyone else in the room.
  ws.on('close', () => {
    if (member !== null) {
      wss.publish(topicOf(member.room), envelope('notice', { text: `${member.nick} left` }));
    }
  });
});

server.listen(Number(args.port), args.host, () => {
  const { address, port } = server.address();
  const host = address.includes(':') ? `[${address}]` : address;
  console.log(`listening http://${host}:${port}`);
});

process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
