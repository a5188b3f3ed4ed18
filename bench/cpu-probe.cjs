// Preloaded (node -r) into every child of the cold-start bench, subject and baseline alike: at
// exit it writes the process's CPU time (user + system, in microseconds, bootstrap included) to
// file descriptor 3 as one JSON line.
'use strict';
process.on('exit', () => {
  const u = process.cpuUsage();
  try {
    require('node:fs').writeSync(3, JSON.stringify({ cpuUs: u.user + u.system }) + '\n');
  } catch {}
});
