// Markdown tables: readable on a terminal and pasted as-is into RESULTS.md.

export type Cell = string | number | undefined;

/** Formats a number with a fixed count of decimals; undefined/NaN print as "–". */
export function fmt(value: number | undefined, decimals = 0): string {
  if (value === undefined || Number.isNaN(value)) return '–';
  return value.toLocaleString('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals }).replace(/,/g, ' ');
}

export function markdownTable(header: string[], rows: Cell[][]): string {
  const text = rows.map((r) => header.map((_, i) => (r[i] === undefined ? '' : String(r[i]))));
  const widths = header.map((h, i) => Math.max(h.length, ...text.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...text.map(line)].join('\n');
}
