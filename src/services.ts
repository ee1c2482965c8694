// Composition of the domain services over one opened installation (used by the CLI and the server).

import { createAnthropicAdminService } from './anthropic-admin/admin.service.js';
import { createClaudeCodeService } from './anthropic-admin/claude-code.service.js';
import { createKeyRetirementService } from './anthropic-admin/key-retirement.service.js';
import { createSpendLimitService } from './anthropic-admin/spend-limits.service.js';
import { createAnthropicSyncService } from './anthropic-admin/sync.service.js';
import { createAuditService } from './audit/audit.service.js';
import { createInviteService } from './auth/invite.service.js';
import { createOidcService } from './auth/oidc.service.js';
import { createOidcClient } from './auth/oidc-client.js';
import { createSessionStore } from './auth/session.store.js';
import { createSessionAdmin } from './auth/session-admin.service.js';
import { createSignInService } from './auth/sign-in.service.js';
import { createSignInThrottle } from './auth/sign-in-throttle.js';
import { createBudgetService } from './budgets/budget.service.js';
import type { Config } from './config/load.js';
import { createAdminTokenService } from './identity/admin-token.service.js';
import { createTeamService } from './identity/team.service.js';
import { createUserService } from './identity/user.service.js';
import { createUserPurge } from './identity/user-purge.service.js';
import type { ServiceContext } from './install/context.js';
import type { Installation } from './install/installation.js';
import { createKeyService } from './keys/key.service.js';
import { createProfileService } from './keys/profile.service.js';
import type { Clock } from './lib/clock.js';
import { dispatcherOption, sharedOutbound } from './outbound/outbound.js';
import { createPriceBook } from './pricing/models.js';
import { createCredentialService } from './vault/credential.service.js';

export function createServices(installation: Installation, config: Config, clock: Clock) {
  const ctx: ServiceContext = { installation, clock };
  const teams = createTeamService(ctx);
  const users = createUserService(ctx, teams, {
    monthlyBudgetMicro: config.claude.per_coder_monthly_limit_micro,
  });
  const upstream = {
    baseUrl: config.upstream.anthropic_base_url,
    timeoutMs: config.upstream.validate_timeout_ms,
    ...dispatcherOption(config.upstream),
  };
  const credentials = createCredentialService(ctx, {
    teams,
    users,
    upstream,
    integrations: {
      githubApiUrl: config.integrations.github_api_url,
      linearApiUrl: config.integrations.linear_api_url,
      timeoutMs: config.upstream.validate_timeout_ms,
      ...dispatcherOption(config.upstream),
    },
  });
  const anthropicAdmin = createAnthropicAdminService(ctx, { credentials, upstream });
  const anthropicSync = createAnthropicSyncService(ctx, {
    credentials,
    upstream,
    prices: createPriceBook(config.pricing),
  });
  const keyRetirements = createKeyRetirementService(ctx, { credentials, upstream });
  const claudeCode = createClaudeCodeService(ctx, { credentials, upstream });
  const keys = createKeyService(ctx, { users, credentials, modelsAllowed: config.claude.models_allowed });
  const audit = createAuditService({
    db: installation.db,
    get anchorKey() {
      return installation.anchorKey;
    },
    installationId: installation.orgId,
    witness: installation.witness,
    keys: () => installation.keys(),
  });
  const profiles = createProfileService(ctx, { modelsAllowed: config.claude.models_allowed });
  const adminTokens = createAdminTokenService(ctx);
  const budgets = createBudgetService(ctx, {
    teams,
    users,
    orgId: installation.orgId,
    orgCapMicro: config.claude.max_monthly_spend_micro,
  });
  const spendLimits = createSpendLimitService(ctx, { credentials, upstream, budgets, teams });
  const sessions = createSessionStore(installation, {
    idleMs: config.auth.session_idle_minutes * 60_000,
    maxMs: config.auth.session_max_hours * 3_600_000,
  });
  const sessionAdmin = createSessionAdmin(ctx, { users, settings: sessions.settings });
  // Failed sign-ins of this process (one per server; a CLI process never signs anyone in).
  const throttle = createSignInThrottle();
  const signIn = createSignInService(ctx, { sessions, throttle });
  const invites = createInviteService(ctx, {
    users,
    sessions,
    throttle,
    publicUrl: config.server.public_url,
  });
  // Single sign-on, when configured; the provider is not contacted until the first sign-in.
  const oidcConfig = config.auth.oidc;
  const oidc = oidcConfig
    ? createOidcService(ctx, {
        config: oidcConfig,
        client: createOidcClient(
          oidcConfig,
          `${config.server.public_url}/auth/oidc/callback`,
          sharedOutbound(config.upstream)?.fetch,
        ),
        users,
        teams,
        sessions,
      })
    : null;
  return {
    teams,
    users,
    userPurge: createUserPurge(ctx),
    credentials,
    anthropicAdmin,
    anthropicSync,
    spendLimits,
    keyRetirements,
    claudeCode,
    keys,
    audit,
    profiles,
    adminTokens,
    budgets,
    sessions,
    sessionAdmin,
    signIn,
    invites,
    throttle,
    oidc,
  };
}

export type Services = ReturnType<typeof createServices>;
