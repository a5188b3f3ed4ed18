// Every exported function and every public method or getter of an exported class, from both
// entry points (`nsm-emulator` and `nsm-emulator/node`), carries a JSDoc comment; members marked
// @internal are exempt (stripInternal leaves them out of the published .d.ts).
import ts from 'typescript';
import { expect, it } from 'vitest';

function undocumented(entries: string[]): string[] {
  const program = ts.createProgram(entries, {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    types: ['node'],
    noEmit: true,
  });
  const checker = program.getTypeChecker();
  const missing: string[] = [];
  for (const entry of entries) {
    const module = checker.getSymbolAtLocation(program.getSourceFile(entry)!)!;
    for (let sym of checker.getExportsOfModule(module)) {
      if (sym.flags & ts.SymbolFlags.Alias) sym = checker.getAliasedSymbol(sym);
      const name = sym.getName();
      if (sym.flags & ts.SymbolFlags.Function && sym.getDocumentationComment(checker).length === 0) missing.push(`${name}()`);
      if (!(sym.flags & ts.SymbolFlags.Class)) continue;
      const decl = sym.declarations![0] as ts.ClassDeclaration;
      for (const m of decl.members) {
        if (!(ts.isMethodDeclaration(m) || ts.isGetAccessor(m)) || ts.isPrivateIdentifier(m.name)) continue;
        if (ts.getCombinedModifierFlags(m) & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) continue;
        if (ts.getJSDocTags(m).some((t) => t.tagName.text === 'internal')) continue;
        const member = checker.getSymbolAtLocation(m.name);
        if (!member || member.getDocumentationComment(checker).length === 0) missing.push(`${name}.${m.name.getText()}`);
      }
    }
  }
  return missing;
}

it('every public function and method of the package has a JSDoc comment', () => {
  const missing = undocumented([new URL('../src/index.ts', import.meta.url).pathname, new URL('../src/node/index.ts', import.meta.url).pathname]);
  expect(missing).toEqual([]);
}, 60_000);

it('the scan reports an undocumented method (so the check above can fail)', () => {
  const missing = undocumented([new URL('./helpers/undocumented-fixture.ts', import.meta.url).pathname]);
  expect(missing.sort()).toEqual(['Fixture.bare', 'bareFunction()']);
});
