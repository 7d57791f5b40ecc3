// docs/other-languages.md quotes the clients instead of copying them: every ```js
// and ```java block there carries `<!-- excerpt: <file> -->` on the line before it
// and must appear in that file, line for line (indentation aside).
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';

const ROOT = new URL('../../../../', import.meta.url);
const DOC = 'docs/other-languages.md';
const BLOCK = /^( *)```(\w*)\n([\s\S]*?)^\1```$/gm;
const MARK = /<!-- excerpt: (\S+) -->\n *$/;

function normalized(text) {
  return text.split('\n').map((line) => line.trim());
}

function containsRun(lines, run) {
  for (let start = 0; start + run.length <= lines.length; start++) {
    if (run.every((line, i) => lines[start + i] === line)) return true;
  }
  return false;
}

test(`every code excerpt in ${DOC} matches the client it quotes`, async () => {
  const doc = await readFile(new URL(DOC, ROOT), 'utf8');
  let excerpts = 0;
  for (const block of doc.matchAll(BLOCK)) {
    const [, , language, code] = block;
    const mark = MARK.exec(doc.slice(0, block.index));
    if (!['js', 'java'].includes(language)) {
      assert.equal(mark, null, `an excerpt mark before a \`\`\`${language} block`);
      continue;
    }
    assert.ok(mark, `the ${language} block at offset ${block.index} needs <!-- excerpt: file --> before it`);
    const source = normalized(await readFile(new URL(mark[1], ROOT), 'utf8'));
    const run = normalized(code.replace(/\n$/, ''));
    assert.ok(containsRun(source, run), `this block is not in ${mark[1]}:\n${code}`);
    excerpts++;
  }
  const marks = doc.match(/<!-- excerpt:/g) ?? [];
  assert.ok(excerpts > 0);
  assert.equal(excerpts, marks.length, 'every excerpt mark is right before a js or java block');
});
