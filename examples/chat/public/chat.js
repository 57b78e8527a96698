// The chat page: the browser's own WebSocket API, no library, no build step.
// Messages are JSON envelopes {event, data}; see examples/chat/server.js for the protocol.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  const joinForm = $('join-form');
  const sendForm = $('send-form');
  const messages = $('messages');
  const status = $('status');
  let socket = null;

  function send(event, data) {
    socket.send(JSON.stringify({ event, data }));
  }

  // Text goes in with textContent only, so a message cannot inject markup.
  function addLine(className, parts) {
    const li = document.createElement('li');
    li.className = className;
    for (const [cls, text] of parts) {
      const span = document.createElement('span');
      if (cls) span.className = cls;
      span.textContent = text;
      li.appendChild(span);
    }
    const atBottom = messages.scrollTop + messages.clientHeight >= messages.scrollHeight - 5;
    messages.appendChild(li);
    if (atBottom) messages.scrollTop = messages.scrollHeight;
  }

  function addMessage({ nick, text, at }) {
    const time = new Date(at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    addLine('message', [
      ['at', time],
      ['nick', nick],
      ['text', text]
    ]);
  }

  joinForm.addEventListener('submit', (event) => {
    event.preventDefault();
    if (socket !== null) return;
    const nick = $('nick').value.trim();
    const room = $('room').value.trim();
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    socket = new WebSocket(`${scheme}//${location.host}/chat`);
    window.chatSocket = socket; // for the console (and the browser test)
    status.textContent = 'connecting...';
    joinForm.querySelector('button').disabled = true;

    socket.addEventListener('open', () => send('join', { nick, room }));

    socket.addEventListener('message', (event) => {
      const { event: name, data } = JSON.parse(event.data);
      if (name === 'joined') {
        status.textContent = `in room ${data.room} as ${data.nick}`;
        joinForm.hidden = true;
        $('room-view').hidden = false;
        sendForm.querySelector('button').disabled = false;
        messages.replaceChildren();
        for (const line of data.history) addMessage(line);
        $('text').focus();
      } else if (name === 'message') {
        addMessage(data);
      } else if (name === 'notice') {
        addLine('notice', [[null, data.text]]);
      }
    });

    socket.addEventListener('close', (event) => {
      const why = event.reason ? `: ${event.reason}` : '';
      status.textContent = `disconnected (${event.code}${why})`;
      sendForm.querySelector('button').disabled = true;
      joinForm.hidden = false;
      joinForm.querySelector('button').disabled = false;
      socket = null;
    });
  });

  sendForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const input = $('text');
    const text = input.value.trim();
    if (!text || socket === null || socket.readyState !== WebSocket.OPEN) return;
    send('message', { text });
    input.value = '';
  });
})();
