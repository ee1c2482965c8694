// The process logger. Log lines are built from allow-listed fields only (request method, path without
// query, status, timing, ids); headers and bodies are never logged, and known secret paths are redacted
// as a second line of defence.
import pino, { type DestinationStream, type Logger } from 'pino';

export type { Logger };

export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'headers.authorization',
  'headers["x-api-key"]',
  'req.headers.cookie',
  'headers.cookie',
  'headers["set-cookie"]',
  'secret',
  'password',
  '*.password',
  'key',
  'token',
  'adminToken',
  'admin_token',
  '*.secret',
  '*.key',
  '*.token',
];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'tollgate' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      serializers: { err: pino.stdSerializers.err },
    },
    destination ?? pino.destination({ dest: 2, sync: false }),
  );
}
