/** A markdown table: the first column left-aligned, the others right-aligned. */
export function mdTable(header: string[], rows: string[][]): string {
  return [
    `| ${header.join(' | ')} |`,
    `|${header.map((_, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

/** One paragraph from sentences written on several source lines. */
export const paragraph = (...parts: string[]): string => parts.join(' ');
