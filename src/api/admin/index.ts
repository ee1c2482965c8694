// Every admin API operation. The server mounts these, the OpenAPI document lists them and the CLI
// calls them (locally or remotely): one list, so nothing can be reachable yet undocumented.
import { z } from 'zod/v4';
import { VERSION } from '../../version.js';
import { defineOp, type Operation } from '../operation.js';
import { adminTokenOps } from './admin-tokens.ops.js';
import { anthropicOps } from './anthropic.ops.js';
import { auditOps } from './audit.ops.js';
import { budgetOps } from './budgets.ops.js';
import { credentialOps } from './credentials.ops.js';
import { keyOps } from './keys.ops.js';
import { overviewOps } from './overview.ops.js';
import { profileOps } from './profiles.ops.js';
import { signInOps } from './sign-in.ops.js';
import { teamOps } from './teams.ops.js';
import { usageOps } from './usage.ops.js';
import { usageSummaryOps } from './usage-summary.ops.js';
import { userOps } from './users.ops.js';

const whoami = defineOp({
  id: 'whoami',
  method: 'GET',
  path: '/admin/v1/whoami',
  tag: 'meta',
  summary: 'Who the admin token belongs to',
  response: z.object({
    actor: z.string(),
    kind: z.string(),
    org_id: z.string(),
    version: z.string(),
    timezone: z.string().meta({ description: 'usage.timezone: the zone reports cut days in' }),
  }),
  run: async (ctx) => ({
    actor: ctx.actor.actor,
    kind: ctx.principal.kind,
    org_id: ctx.installation.orgId,
    version: VERSION,
    timezone: ctx.config.usage.timezone,
  }),
});

export const ADMIN_OPS: readonly Operation[] = [
  whoami,
  ...teamOps,
  ...userOps,
  ...signInOps,
  ...budgetOps,
  ...credentialOps,
  ...keyOps,
  ...profileOps,
  ...overviewOps,
  ...adminTokenOps,
  ...usageOps,
  ...usageSummaryOps,
  ...auditOps,
  ...anthropicOps,
];
