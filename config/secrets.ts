// What must never reach a log line, `turnout check`'s output or an error
// message: the tokens, broker passwords (also inside URLs) and the AWS
// secret the SDK reads from the environment. The schema marks secret
// options; names that look like secrets count too, so an option added
// without the mark is still covered.

import { isSecretOption, redactUrls } from './redact.ts';
import { schema, type Config, type OptionName } from './schema.ts';

/** Whether an option holds a secret. */
function secretOption(name: OptionName): boolean {
  return isSecretOption(name, (schema[name] as { secret?: boolean }).secret);
}

/** Shortest secret turnout scrubs from text: shorter ones would erase ordinary words and numbers. */
export const MIN_SCRUBBED = 4;

/** Every secret value in a configuration (and the AWS secret in the environment), in the forms text may carry them. */
export function secretsOf(config: Config, env: NodeJS.ProcessEnv = process.env): string[] {
  const values: string[] = [];
  for (const name of Object.keys(config) as OptionName[]) {
    const v: unknown = config[name];
    if (typeof v === 'string' && secretOption(name)) values.push(v);
  }
  for (const u of [config.broker.kind === 'amqp' ? config.broker.url : undefined, config.appUrl]) {
    if (u === undefined) continue;
    try {
      const password = new URL(u).password;
      if (password !== '') values.push(password, decodeURIComponent(password));
    } catch {
      // Not a URL: nothing to take from it (the schema refused it already).
    }
  }
  for (const k of ['AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN']) {
    const v = env[k];
    if (v !== undefined && v !== '') values.push(v);
  }
  const forms = new Set<string>();
  for (const v of values) {
    // As written, as JSON writes it inside a string, and percent-encoded (in a URL).
    for (const f of [v, JSON.stringify(v).slice(1, -1), encodeURIComponent(v)]) if (f.length >= MIN_SCRUBBED) forms.add(f);
  }
  // Longest first, so that a secret containing another is replaced whole.
  return [...forms].sort((a, b) => b.length - a.length);
}

/** A function that replaces every given secret in a text with [redacted]. */
export function scrubber(secrets: readonly string[]): (text: string) => string {
  if (secrets.length === 0) return redactUrls;
  return (text: string): string => {
    let out = text;
    for (const s of secrets) if (out.includes(s)) out = out.split(s).join('[redacted]');
    return redactUrls(out);
  };
}
