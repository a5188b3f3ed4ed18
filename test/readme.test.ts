// The README's library example must run as printed.
import { readFileSync } from 'node:fs';
import ts from 'typescript';
import { expect, it } from 'vitest';

it('the README library example runs', async () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const block = /## Use it from code\s+```ts\n([\s\S]*?)```/.exec(readme)?.[1];
  expect(block).toBeDefined();
  const js = ts.transpileModule(block!, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
  const lines: string[] = [];
  const log = (...a: unknown[]) => lines.push(a.join(' '));
  const body = js.replace(/import \{([^}]*)\} from 'nsm-emulator';/, 'const {$1} = lib;').replace(/console\.log/g, 'log');
  const lib = await import('../src/index.js');
  await new Function('lib', 'log', `return (async () => { ${body} })();`)(lib, log);
  expect(lines[0]).toMatch(/^i-[0-9a-f]{17}-enc01[0-9a-f]{14}$/);
  expect(lines[1]).toBe('ReadOnlyIndex');
});
