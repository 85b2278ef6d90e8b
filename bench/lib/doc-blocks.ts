import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const RESULTS_END = '<!-- bench:results:end -->';

/**
 * Replaces the block `<!-- bench:<name>:start -->…<!-- bench:<name>:end -->` of
 * docs/benchmarks.md with `markdown`; a block not there yet goes after the full run's block.
 * Each part owns its block, so a part run (`--only`) updates its figures and nothing else.
 */
export function writeBlock(root: string, name: string, markdown: string): void {
  const file = join(root, 'docs/benchmarks.md');
  const start = `<!-- bench:${name}:start -->`;
  const end = `<!-- bench:${name}:end -->`;
  const block = `${start}\n\n${markdown.trim()}\n\n${end}`;
  let text = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n';
  const a = text.indexOf(start);
  const b = text.indexOf(end);
  if (a !== -1 && b > a) text = `${text.slice(0, a)}${block}${text.slice(b + end.length)}`;
  else {
    const at = text.indexOf(RESULTS_END);
    text =
      at === -1
        ? `${text.trimEnd()}\n\n${block}\n`
        : `${text.slice(0, at + RESULTS_END.length)}\n\n${block}${text.slice(at + RESULTS_END.length)}`;
  }
  writeFileSync(file, text);
}
