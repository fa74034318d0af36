// An APNs-shaped HTTP/2 server on Node's http2 module (nghttp2 inside),
// for the pool's interoperability tests (interop_test.go). One scenario
// per process:
//
//   node server.js SCENARIO KEY.pem CERT.pem
//
// It listens on 127.0.0.1 on a free port and prints "listening PORT".
// Anything wrong it sees (a session or stream error, a GOAWAY or
// RST_STREAM from the client with an error code, a request answered
// twice, a body that is not the JSON the client sent) is written to
// stderr as a line starting with "ERROR"; the test fails on any.
//
// Scenarios:
//   streams  Apple's habit: a push to a token starting with "bad" is
//            answered 400 BadDeviceToken and MAX_CONCURRENT_STREAMS drops
//            to 1; a success raises it back to 100.
//   window   INITIAL_WINDOW_SIZE changes every 5 requests (100, 65535, 7,
//            1 MiB...) while bodies of a few KiB are in flight.
//   goaway   holds the first 10 streams, then sends GOAWAY with the 5th
//            stream as the last one (below open streams), answers those
//            up to it and ignores the rest; later connections answer 200.
//   refuse   GOAWAY at connect: last stream 0, debug data
//            {"reason":"BadCertificateEnvironment"}.
//   gone     410 {"reason":"Unregistered","timestamp":1700000000123}.
//   bigbody  400 BadDeviceToken whose body is padded to 3 MiB, more than
//            the client's stream window.
'use strict';

const http2 = require('node:http2');
const fs = require('node:fs');

const [scenario, keyFile, certFile] = process.argv.slice(2);
const fail = (msg) => process.stderr.write(`ERROR ${msg}\n`);

const server = http2.createSecureServer({
  key: fs.readFileSync(keyFile),
  cert: fs.readFileSync(certFile),
  settings: { maxConcurrentStreams: 100 },
});

const answered = new Map(); // apns-id -> answers
let requests = 0;
let firstSession = null;
let held = [];

server.on('sessionError', (err) => fail(`session error: ${err.message}`));
server.on('session', (session) => {
  session.on('error', (err) => fail(`session error: ${err.message}`));
  session.on('frameError', (type, code, id) => fail(`frame error: type ${type} code ${code} stream ${id}`));
  session.on('goaway', (code) => {
    if (code !== 0) fail(`client sent GOAWAY with code ${code}`);
  });
  if (scenario === 'refuse') {
    session.goaway(http2.constants.NGHTTP2_NO_ERROR, 0,
      Buffer.from('{"reason":"BadCertificateEnvironment"}'));
  }
  if (scenario === 'goaway' && firstSession === null) firstSession = session;
});

// abandoned reports a stream above our own GOAWAY's last stream id:
// nghttp2 refuses it, and the client retries it elsewhere.
function abandoned(stream) {
  const last = stream.sess.goawayLast;
  return last !== undefined && stream.id > last;
}

function answer(stream, headers, status, body) {
  const id = headers['apns-id'];
  if (id) {
    const n = (answered.get(id) || 0) + 1;
    answered.set(id, n);
    if (n > 1) fail(`apns-id ${id} answered ${n} times`);
  }
  const h = { ':status': status };
  if (id) h['apns-id'] = id;
  if (body === undefined) {
    stream.respond(h, { endStream: true });
    return;
  }
  h['content-type'] = 'application/json';
  stream.respond(h);
  stream.end(body);
}

server.on('stream', (stream, headers) => {
  stream.sess = stream.session; // stream.session is gone once it closes
  stream.on('error', (err) => {
    if (!abandoned(stream)) fail(`stream ${stream.id} error: ${err.message}`);
  });
  stream.on('close', () => {
    if (abandoned(stream)) return;
    const code = stream.rstCode;
    // CANCEL is what a client sends for a request it gave up on; the
    // tests do not time out, so anything but NO_ERROR is a fault here.
    if (code !== undefined && code !== 0) fail(`stream ${stream.id} closed with code ${code}`);
  });
  const chunks = [];
  stream.on('data', (c) => chunks.push(c));
  stream.on('end', () => {
    const body = Buffer.concat(chunks);
    try {
      const p = JSON.parse(body.toString());
      if (!p.aps) fail(`stream ${stream.id}: payload without aps`);
    } catch (e) {
      fail(`stream ${stream.id}: body of ${body.length} bytes is not JSON: ${e.message}`);
    }
    requests++;
    handle(stream, headers);
  });
});

// changeSettings sends SETTINGS, one frame awaiting acknowledgement at a
// time (nghttp2 allows few): changes asked for meanwhile are merged and
// sent when the ACK arrives, the latest value winning; a value already in
// force is not sent again.
function changeSettings(session, settings) {
  session.wanted = Object.assign(session.wanted || {}, settings);
  if (session.inFlight) return;
  const sent = session.sent || (session.sent = {});
  const change = {};
  for (const [k, v] of Object.entries(session.wanted)) {
    if (sent[k] !== v) change[k] = v;
  }
  session.wanted = {};
  if (Object.keys(change).length === 0 || session.destroyed || session.closed) return;
  Object.assign(sent, change);
  session.inFlight = true;
  session.settings(change, () => {
    session.inFlight = false;
    changeSettings(session, {});
  });
}

function handle(stream, headers) {
  const token = headers[':path'].split('/').pop();
  switch (scenario) {
    case 'streams': {
      const bad = token.startsWith('bad');
      if (bad) {
        answer(stream, headers, 400, '{"reason":"BadDeviceToken"}');
      } else {
        answer(stream, headers, 200);
      }
      changeSettings(stream.session, { maxConcurrentStreams: bad ? 1 : 100 });
      return;
    }
    case 'window': {
      if (requests % 5 === 0) {
        const sizes = [100, 65535, 7, 1 << 20, 1000];
        changeSettings(stream.session, { initialWindowSize: sizes[(requests / 5) % sizes.length] });
      }
      answer(stream, headers, 200);
      return;
    }
    case 'goaway': {
      if (stream.session !== firstSession) {
        answer(stream, headers, 200);
        return;
      }
      if (abandoned(stream)) return; // the client retries it elsewhere
      held.push([stream, headers]);
      if (held.length === 10) {
        const last = held[4][0].id;
        stream.session.goawayLast = last;
        stream.session.goaway(http2.constants.NGHTTP2_NO_ERROR, last);
        for (const [s, h] of held) {
          if (s.id <= last) answer(s, h, 200);
        }
        held = [];
      }
      return;
    }
    case 'gone':
      answer(stream, headers, 410, '{"reason":"Unregistered","timestamp":1700000000123}');
      return;
    case 'bigbody':
      answer(stream, headers, 400, '{"reason":"BadDeviceToken"}' + ' '.repeat(3 << 20));
      return;
    default:
      fail(`unexpected request in scenario ${scenario}`);
      answer(stream, headers, 500);
  }
}

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
