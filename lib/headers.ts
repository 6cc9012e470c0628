// Header names are case-insensitive (as in HTTP), but brokers keep them as the
// producer wrote them: AMQP and Kafka may deliver "X-Schema-Version". Every
// lookup or overwrite of a header turnout itself reads goes through these.

type Headers = Record<string, string>;

/** The value of `name`, matched case-insensitively (exact match first, the common case). */
export function headerValue(headers: Headers, name: string): string | undefined {
  const exact = headers[name];
  if (exact !== undefined) return exact;
  const lower = name.toLowerCase();
  for (const k in headers) if (k.toLowerCase() === lower) return headers[k];
  return undefined;
}

/** Sets `name` (as given), removing any differently-cased copy so the message never carries two. */
export function setHeader(headers: Headers, name: string, value: string): void {
  deleteHeader(headers, name);
  headers[name] = value;
}

export function deleteHeader(headers: Headers, name: string): void {
  const lower = name.toLowerCase();
  for (const k of Object.keys(headers)) if (k.toLowerCase() === lower) delete headers[k];
}
