// docs/kms.md's worked key-policy test must run as printed, against AWS's SDK.
import { readFileSync } from 'node:fs';
import ts from 'typescript';
import { expect, it } from 'vitest';

it('the docs/kms.md worked example runs and prints what its comments say', async () => {
  const doc = readFileSync(new URL('../docs/kms.md', import.meta.url), 'utf8');
  const block = /## A worked key-policy test[\s\S]*?```ts\n([\s\S]*?)```/.exec(doc)?.[1];
  expect(block).toBeDefined();
  const js = ts.transpileModule(block!, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
  const mods: Record<string, unknown> = {
    'node:crypto': await import('node:crypto'),
    '@aws-sdk/client-kms': await import('@aws-sdk/client-kms'),
    'nsm-emulator': await import('../src/index.js'),
    'nsm-emulator/node': await import('../src/node/index.js'),
  };
  const body = js.replace(/import \{([^}]*)\} from '([^']+)';/g, (_, names: string, from: string) => {
    expect(Object.keys(mods)).toContain(from);
    return `const {${names}} = mods[${JSON.stringify(from)}];`;
  });
  const lines: string[] = [];
  const log = (...a: unknown[]) => lines.push(a.join(' '));
  await new Function('mods', 'log', `return (async () => { ${body.replace(/console\.log/g, 'log')} })();`)(mods, log);
  expect(lines[0]).toBe('s3cret');
  expect(lines[1]).toBe('AccessDeniedException');
  expect(lines[2]).toMatch(/^denied: .*condition not met: StringEqualsIgnoreCase kms:RecipientAttestation:PCR0 "(ab){48}" \(the request has "(cd){48}"\)$/);
});
