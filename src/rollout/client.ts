// `turnout rollout status|pause|resume|promote|abort --controller URL`: the
// HTTP API from the command line. status prints the JSON; a command prints
// the answer. Exit 0 when the controller accepted, 1 otherwise.

export async function runRolloutClient(action: string, controller: string, adminToken: string | undefined, out: NodeJS.WritableStream, err: NodeJS.WritableStream): Promise<number> {
  const base = controller.replace(/\/$/, '');
  try {
    if (action === 'status') {
      const res = await fetch(`${base}/v1/rollout`, { signal: AbortSignal.timeout(5000) });
      const text = await res.text();
      out.write(`${text}\n`);
      return res.status === 200 ? 0 : 1;
    }
    const headers: Record<string, string> = {};
    if (adminToken !== undefined) headers.authorization = `Bearer ${adminToken}`;
    const res = await fetch(`${base}/v1/rollout/${action}`, { method: 'POST', headers, signal: AbortSignal.timeout(5000) });
    const text = await res.text();
    (res.status < 300 ? out : err).write(`${res.status} ${text}\n`);
    return res.status < 300 ? 0 : 1;
  } catch (e) {
    const x = e as Error & { cause?: { code?: string } };
    err.write(`turnout: controller ${base} unreachable: ${x.cause?.code ?? x.message}\n`);
    return 1;
  }
}
