/**
 * A configuration problem found at start. The CLI prints it and exits with
 * code 2; `variable` names what to fix.
 */
export class ConfigError extends Error {
  readonly variable: string;
  constructor(message: string, variable: string) {
    super(message);
    this.name = 'ConfigError';
    this.variable = variable;
  }
}
