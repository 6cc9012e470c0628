// Masking secrets in text, without knowing the configuration (the schema's
// error messages use it while the configuration is still being read).

const SECRET_NAME = /(token|password|secret)$/i;

/** Whether an option holds a secret: marked so in the schema, or named like one (an option added without the mark stays covered). */
export function isSecretOption(name: string, marked: boolean | undefined): boolean {
  return marked === true || SECRET_NAME.test(name);
}

/** Replaces the password of every URL in a text (scheme://user:password@host) with ***. */
export function redactUrls(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/[^\s/:@]*:)[^\s@/]*@/gi, '$1***@');
}

/** How a raw option value may be shown in an error message. */
export function shownValue(secret: boolean, raw: string): string {
  return secret ? '(a secret, not shown)' : JSON.stringify(redactUrls(raw));
}
