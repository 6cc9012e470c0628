// Renders the configuration reference from the schema. The README's table is
// this output (test/unit/readme.test.ts keeps them equal); regenerate with
//   node scripts/readme-config.ts --write

import { envName, schema, type OptionName } from './schema.ts';

const GROUPS: Record<string, string> = {
  broker: 'Broker',
  routing: 'Routing',
  versions: 'Versions and translation',
  delivery: 'Delivery and dead-lettering',
  http: 'HTTP',
  runtime: 'Runtime',
};

const cell = (s: string): string => s.replace(/\|/g, '\\|');

export function configTable(): string {
  const lines = ['| variable | flag | meaning | allowed | default |', '|---|---|---|---|---|'];
  for (const group of Object.keys(GROUPS)) {
    lines.push(`| **${GROUPS[group]}** | | | | |`);
    for (const name of Object.keys(schema) as OptionName[]) {
      const spec = schema[name];
      if (spec.group !== group) continue;
      const dflt = 'default' in spec ? `\`${spec.default}\`` : 'none';
      lines.push(`| \`${envName(spec.flag)}\` | \`--${spec.flag}\` | ${cell(spec.doc)} | ${cell(spec.allowed)} | ${dflt} |`);
    }
  }
  return lines.join('\n');
}
