/**
 * The inspector page's markup and style sheet, as strings the Node server serves. The markup
 * holds only static structure; page.ts fills it (always through textContent, never HTML, since
 * every value shown comes from an untrusted document).
 * @module
 */

/** The page, given the import map (JSON) that resolves the core's bare imports. */
export function inspectorHtml(importMap: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>NSM attestation document inspector</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/app.css">
<script type="importmap">${importMap}</script>
<script type="module" src="/lib/inspector/page.js"></script>
</head>
<body>
<header>
  <h1>Attestation document inspector</h1>
  <p class="note">Everything is decoded and verified in this page: nothing you open here is sent anywhere.</p>
</header>
<main>
  <section id="input" aria-labelledby="h-input">
    <h2 id="h-input">Document</h2>
    <div id="drop" class="drop">
      Drop a document file here (raw CBOR, hex or base64), with a root certificate to trust if you like, or
      <button type="button" id="choose">choose a file</button>
    </div>
    <input type="file" id="file" class="visually-hidden" tabindex="-1" aria-label="Document file">
    <label for="paste">Or paste it as hex or base64</label>
    <textarea id="paste" rows="3" spellcheck="false"></textarea>
    <div class="controls">
      <button type="button" id="inspect">Inspect</button>
      <label for="root">Trust</label>
      <select id="root">
        <option value="auto">the emulator's test root, then AWS's root</option>
        <option value="test">the emulator's test root only</option>
        <option value="aws">AWS Nitro Enclaves Root-G1 only</option>
        <option value="custom">a root I choose</option>
      </select>
      <label for="root-file">Root certificate (PEM or DER)</label>
      <input type="file" id="root-file" accept=".pem,.crt,.cer,.der">
      <label for="time">Check validity at</label>
      <select id="time">
        <option value="document">the document's timestamp</option>
        <option value="now">now</option>
      </select>
    </div>
    <p id="input-error" class="error" role="alert"></p>
  </section>
  <section id="verdict" aria-labelledby="h-verdict" hidden>
    <h2 id="h-verdict">Verdict</h2>
    <p id="verdict-text" role="status"></p>
    <ul id="verdict-checks"></ul>
  </section>
  <section id="summary" aria-labelledby="h-summary" hidden>
    <h2 id="h-summary">Document</h2>
    <dl id="summary-list"></dl>
  </section>
  <section id="pcrs" aria-labelledby="h-pcrs" hidden>
    <h2 id="h-pcrs">PCRs</h2>
    <table>
      <thead><tr><th scope="col">PCR</th><th scope="col">Value (SHA-384)</th><th scope="col">State</th><th scope="col">Expected</th></tr></thead>
      <tbody id="pcr-rows"></tbody>
    </table>
  </section>
  <section id="fields" aria-labelledby="h-fields" hidden>
    <h2 id="h-fields">user_data, nonce, public_key</h2>
    <div id="field-list"></div>
  </section>
  <section id="chain" aria-labelledby="h-chain" hidden>
    <h2 id="h-chain">Certificate chain</h2>
    <p class="note">Validity windows on a logarithmic time axis centred on the document's timestamp.</p>
    <div id="timeline" role="img" aria-label="Validity windows of the certificates"></div>
    <table>
      <thead><tr><th scope="col">Position</th><th scope="col">Subject</th><th scope="col">Serial</th><th scope="col">Valid</th><th scope="col">Key usage</th></tr></thead>
      <tbody id="chain-rows"></tbody>
    </table>
  </section>
  <section id="compare" aria-labelledby="h-compare">
    <h2 id="h-compare">Compare</h2>
    <label for="expected">Expected PCRs: a <code>describe-eif</code> JSON, or lines like <code>0=ab12…</code></label>
    <textarea id="expected" rows="3" spellcheck="false"></textarea>
    <div class="controls"><button type="button" id="compare-pcrs">Compare PCRs</button></div>
    <p id="expected-result" role="status"></p>
    <label for="other">A second document (hex or base64) to compare side by side</label>
    <textarea id="other" rows="2" spellcheck="false"></textarea>
    <div class="controls">
      <input type="file" id="other-file" aria-label="Second document file">
      <button type="button" id="compare-docs">Compare documents</button>
    </div>
    <p id="other-result" role="status"></p>
    <table id="diff" hidden>
      <thead><tr><th scope="col">Field</th><th scope="col">This document</th><th scope="col">Second document</th></tr></thead>
      <tbody id="diff-rows"></tbody>
    </table>
  </section>
</main>
</body>
</html>
`;
}

/** The page's style sheet: readable at 1000x700, visible focus, colour never the only signal. */
export const INSPECTOR_CSS = `
:root { color-scheme: light; --ok: #11643a; --bad: #a4161a; --warn: #7a5200; --line: #c9ccd1; --muted: #555b63; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, sans-serif; margin: 0; color: #16181b; background: #f6f7f9; }
header { padding: 12px 24px; background: #1f2933; color: #fff; }
header h1 { margin: 0; font-size: 20px; }
header .note { color: #d5dae0; margin: 4px 0 0; }
main { max-width: 1200px; margin: 0 auto; padding: 8px 24px 40px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 10px 16px; margin: 12px 0; }
h2 { font-size: 17px; margin: 4px 0 8px; }
label { display: block; margin: 8px 0 2px; font-weight: 600; }
.controls { display: flex; flex-wrap: wrap; align-items: center; gap: 8px 12px; margin: 8px 0; }
.controls label { margin: 0; }
textarea { width: 100%; font: 13px/1.3 ui-monospace, monospace; }
button, select, input, textarea { font-size: 14px; }
button { padding: 5px 14px; border: 1px solid #3a4656; border-radius: 4px; background: #2f5d8a; color: #fff; cursor: pointer; }
:focus-visible { outline: 3px solid #f0a500; outline-offset: 2px; }
.drop { border: 2px dashed #6b7785; border-radius: 6px; padding: 18px; text-align: center; color: var(--muted); }
.drop.over { background: #e8f0fb; border-color: #2f5d8a; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
.error { color: var(--bad); font-weight: 600; }
.note { color: var(--muted); margin: 2px 0 8px; }
#verdict-text { font-size: 18px; font-weight: 700; margin: 4px 0; }
#verdict[data-valid="true"] #verdict-text { color: var(--ok); }
#verdict[data-valid="false"] #verdict-text { color: var(--bad); }
#verdict-checks { margin: 4px 0; padding-left: 20px; color: var(--muted); }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 0; }
dt { font-weight: 600; }
dd { margin: 0; font-family: ui-monospace, monospace; overflow-wrap: anywhere; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; border-bottom: 1px solid var(--line); padding: 3px 6px; vertical-align: top; }
td.hex { font-family: ui-monospace, monospace; overflow-wrap: anywhere; font-size: 12px; }
tr.zero td.hex { color: var(--muted); }
tr.nonzero td:first-child { font-weight: 700; }
.match { color: var(--ok); font-weight: 700; }
.mismatch { color: var(--bad); font-weight: 700; }
tr.differs { background: #fdecec; }
.field { border-top: 1px solid var(--line); padding: 6px 0; }
.field h3 { font-size: 14px; margin: 0 0 2px; }
.field pre { margin: 2px 0; white-space: pre-wrap; overflow-wrap: anywhere; font-size: 12px; }
#timeline { position: relative; margin: 6px 0 12px; }
.tl-row { position: relative; height: 26px; border-bottom: 1px dotted #e1e4e8; }
.tl-label { position: absolute; left: 0; width: 150px; top: 4px; font-size: 12px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.tl-track { position: absolute; left: 155px; right: 0; top: 0; bottom: 0; }
.tl-bar { position: absolute; top: 6px; height: 14px; border-radius: 3px; background: #4f7cac; min-width: 2px; }
.tl-bar.outside { background: #c0392b; }
.tl-axis { position: relative; height: 20px; margin-left: 155px; font-size: 11px; color: var(--muted); }
.tl-tick { position: absolute; transform: translateX(-50%); white-space: nowrap; }
.doc-marker { position: absolute; top: 0; bottom: 0; width: 2px; background: #f0a500; left: 50%; }
`;
