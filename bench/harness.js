// Benchmark harness shared by every suite in bench/. Each measurement is reported as a ratio
// against a baseline (the raw primitive doing the same work) measured in the same run, with
// the two interleaved over several rounds so that machine noise hits both alike.

/** Runs `fn` (sync or async) repeatedly for about `ms` milliseconds; returns ops per second. */
export async function opsPerSecond(fn, ms) {
  // Calibrate a batch size so timer reads do not dominate.
  let batch = 1;
  for (;;) {
    const t0 = performance.now();
    for (let i = 0; i < batch; i++) await fn();
    if (performance.now() - t0 > 5 || batch >= 1 << 20) break;
    batch *= 2;
  }
  let ops = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    for (let i = 0; i < batch; i++) await fn();
    ops += batch;
    now = performance.now();
  }
  return (ops * 1000) / (now - start);
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

/**
 * Measures `subject` and `baseline` alternately for `rounds` rounds and reports medians.
 * Returns one result row: {name, opsPerSec, baseline, baselineOpsPerSec, ratio, target?}.
 */
export async function compare({ name, fn, baseline, baselineFn, target, rounds = 5, ms = 300, extra = {} }) {
  await fn();
  await baselineFn();
  const a = [];
  const b = [];
  for (let r = 0; r < rounds; r++) {
    a.push(await opsPerSecond(fn, ms));
    b.push(await opsPerSecond(baselineFn, ms));
  }
  const opsPerSec = median(a);
  const baselineOpsPerSec = median(b);
  const row = { name, opsPerSec, baseline, baselineOpsPerSec, ratio: opsPerSec / baselineOpsPerSec, ...extra };
  if (target !== undefined) {
    row.target = target;
    row.pass = row.ratio >= target;
  }
  return row;
}

/** Formats result rows as an aligned table for people. */
export function formatTable(rows) {
  const fmt = (n) => (n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toPrecision(3));
  const lines = rows.map((r) => {
    const t = r.target === undefined ? '' : `  target >= ${r.target}: ${r.pass ? 'ok' : 'MISSED'}`;
    const unit = r.unit ?? 'ops/s';
    return `${r.name.padEnd(44)} ${fmt(r.opsPerSec).padStart(12)} ${unit}  vs ${r.baseline}: ${fmt(r.baselineOpsPerSec)} ${unit}  ratio ${r.ratio.toFixed(2)}${t}${r.note ? `  (${r.note})` : ''}`;
  });
  return lines.join('\n');
}
