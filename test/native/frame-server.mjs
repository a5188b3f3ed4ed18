// A stand-alone server speaking the serve framing (4-byte big-endian length, then the body),
// written independently of src/node/: it answers every request with the response given in hex
// on the command line, or never answers with "stall". Prints "listening" once ready.
//   node frame-server.mjs SOCKET_PATH RESPONSE_HEX|stall
import { createServer } from 'node:net';
import { rmSync } from 'node:fs';

const [path, mode] = process.argv.slice(2);
const response = mode === 'stall' ? null : Buffer.from(mode, 'hex');
rmSync(path, { force: true });
createServer((socket) => {
  let pending = Buffer.alloc(0);
  socket.on('data', (chunk) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 4 && pending.length >= 4 + pending.readUInt32BE(0)) {
      pending = pending.subarray(4 + pending.readUInt32BE(0));
      if (response) {
        const head = Buffer.alloc(4);
        head.writeUInt32BE(response.length);
        socket.write(Buffer.concat([head, response]));
      }
    }
  });
  socket.on('error', () => {});
}).listen(path, () => console.log('listening'));
