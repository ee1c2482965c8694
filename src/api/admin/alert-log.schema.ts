// The alert log as the status and overview operations answer it (src/alerts/alert.repo.ts, alertLog).
import { z } from 'zod/v4';

const alertView = z.object({
  id: z.string(),
  kind: z.enum(['budget', 'credential_invalid', 'key_age', 'credential_age']),
  raised_at: z.string(),
  message: z.string().meta({ description: 'the text the webhook received (or would have)' }),
  object: z.object({ type: z.string(), id: z.string() }),
  delivery: z
    .enum(['pending', 'delivered', 'failed', 'off'])
    .meta({ description: 'off: no webhook was configured when it was raised' }),
  attempts: z.number().int(),
  delivered_at: z.string().nullable(),
  next_attempt_at: z.string().nullable(),
  last_error: z.string().nullable().meta({ description: 'an HTTP status or network code; never the URL' }),
});

export const alertLogSchema = z.object({
  webhook: z.boolean().meta({ description: 'whether alerts.webhook_url is configured' }),
  recent: z.array(alertView).meta({ description: 'the latest alerts, newest first' }),
  undelivered: z.array(alertView).meta({ description: 'pending or failed deliveries, newest first' }),
  undelivered_count: z.number().int(),
});
