// Counts for the campaign's summary: cases and outcomes per category.

export class Stats {
  readonly started = Date.now();
  private readonly byCategory = new Map<string, Map<string, number>>();

  add(category: string, outcome: string): void {
    let m = this.byCategory.get(category);
    if (!m) this.byCategory.set(category, (m = new Map()));
    m.set(outcome, (m.get(outcome) ?? 0) + 1);
    m.set('cases', (m.get('cases') ?? 0) + (outcome.startsWith('~') ? 0 : 1));
  }

  cases(category?: string): number {
    let n = 0;
    for (const [c, m] of this.byCategory) if (category === undefined || c === category) n += m.get('cases') ?? 0;
    return n;
  }

  summary(seed: number): string {
    const lines = [`fuzz summary: seed ${seed}, ${this.cases()} cases in ${((Date.now() - this.started) / 1000).toFixed(1)} s`];
    for (const [c, m] of [...this.byCategory].sort()) {
      const outcomes = [...m].filter(([k]) => k !== 'cases').sort().map(([k, v]) => `${k} ${v}`).join(', ');
      lines.push(`  ${c}: ${m.get('cases') ?? 0} cases: ${outcomes}`);
    }
    return lines.join('\n');
  }
}
