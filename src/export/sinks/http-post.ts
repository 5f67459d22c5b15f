import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { SinkError } from './transport.ts';

/**
 * POSTs a body and resolves with the status when the receiver answered 2xx. Any other answer or a
 * transport failure rejects with a stable code (`HTTP_<status>`, `ECONNREFUSED`, …); the response
 * body is read and discarded, never logged (it may echo what was sent).
 */
export function postBody(
  url: URL,
  body: Buffer,
  headers: Record<string, string>,
  options: { ca?: string | undefined; timeoutMs: number },
): Promise<number> {
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        headers: { ...headers, 'content-length': String(body.length) },
        ca: options.ca,
        timeout: options.timeoutMs,
      },
      (res) => {
        res.resume();
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) resolve(status);
          else reject(new SinkError(`HTTP_${status}`, `receiver answered HTTP ${status}`));
        });
        res.on('error', (err) =>
          reject(new SinkError((err as NodeJS.ErrnoException).code ?? 'ECONNRESET', 'response failed')),
        );
      },
    );
    req.on('timeout', () => req.destroy(new SinkError('ETIMEDOUT', 'receiver did not answer in time')));
    req.on('error', (err) =>
      reject(
        err instanceof SinkError
          ? err
          : new SinkError((err as NodeJS.ErrnoException).code ?? 'ERR_HTTP', 'request failed'),
      ),
    );
    req.end(body);
  });
}
