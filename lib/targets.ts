// Target templates: TURNOUT_BLUE, TURNOUT_GREEN, TURNOUT_DLQ, TURNOUT_GROUP
// and TURNOUT_KAFKA_DEFER_TOPIC may name a queue per source with {source}.

/** Expands {source} in a target template. */
export function expandTarget(template: string, source: string): string {
  return template.replaceAll('{source}', source);
}
