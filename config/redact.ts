// Masking secrets in text, without knowing the configuration (the schema's
// error messages use it while the configuration is still being read).

const SECRET_NAME = /(token|password|secret)$/i;

/** Whether an option holds a secret: marked so in the schema, or named like one (an option added without the mark stays covered). */
export function isSecretOption(name: string, marked: boolean | undefined): boolean {
  return marked === true || SECRET_NAME.test(name);
}

/**
 * scheme://user:password@ with the password masked. A match may start only
 * where a run of scheme characters starts (the lookbehind): tried from every
 * letter, the expression rescanned the rest of the run each time, quadratic
 * in a long word, and every log line passes here (a 60 KiB version header
 * quoted in a dead-letter line held the event loop for seconds). The part
 * before the first letter is kept, so "9amqp://u:p@h" is masked as before.
 */
const URL_PASSWORD = /(?<![a-z0-9+.-])([0-9+.-]*[a-z][a-z0-9+.-]*:\/\/[^\s/:@]*:)[^\s@/]*@/gi;

/** Replaces the password of every URL in a text (scheme://user:password@host) with ***; linear in the text's length. */
export function redactUrls(text: string): string {
  return text.replace(URL_PASSWORD, '$1***@');
}

/** How a raw option value may be shown in an error message. */
export function shownValue(secret: boolean, raw: string): string {
  return secret ? '(a secret, not shown)' : JSON.stringify(redactUrls(raw));
}
