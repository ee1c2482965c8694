// The one schema of tollgate.yml. Every key is optional and its default lives here; money is turned into
// integer micro-USD on the way out (`*_usd` keys in the file become `*_micro` fields in the result).
import { z } from 'zod';
import { webhookUrlProblem } from '../alerts/webhook-address.js';
import { MAX_USD, usdToMicro } from '../lib/money.js';
import { isTimeZone } from '../lib/timezone.js';

/** Keys whose values are secrets: refused inline in the file (env:/file: only) and never echoed. */
export const SECRET_KEYS: readonly string[] = ['alerts.webhook_url', 'metrics.token'];
// Keys added later under these names are secrets too, without having to remember this list.
const SECRET_KEY_NAME = /(?:_secret|_token|^password)$/;
/** URL keys that may embed a password: inline only without one, and never echoed in messages. */
export const CREDENTIAL_URL_KEYS: readonly string[] = ['database.url', 'redis.url', 'upstream.proxy_url'];

export type KeyPath = ReadonlyArray<string | number>;

export function isSecretKey(path: KeyPath): boolean {
  const last = path[path.length - 1];
  return SECRET_KEYS.includes(path.join('.')) || (typeof last === 'string' && SECRET_KEY_NAME.test(last));
}

/** True for keys whose values must never appear in a message. */
export function isSensitiveKey(path: KeyPath): boolean {
  return isSecretKey(path) || CREDENTIAL_URL_KEYS.includes(path.join('.'));
}

interface UrlRule {
  protocols: readonly string[];
  expected: string;
  /** No user/password, query or fragment: the URL is used as a base others are appended to. */
  bare?: boolean;
  allowEmpty?: boolean;
}

// Messages never repeat the value: some of these URLs are secrets.
function urlField(rule: UrlRule) {
  return z.string().superRefine((value, ctx) => {
    if (rule.allowEmpty && value === '') return;
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      ctx.addIssue({ code: 'custom', message: `expected ${rule.expected}` });
      return;
    }
    if (!rule.protocols.includes(url.protocol))
      ctx.addIssue({ code: 'custom', message: `expected ${rule.expected}` });
    if (rule.bare && (url.username !== '' || url.password !== '')) {
      ctx.addIssue({ code: 'custom', message: 'must not contain credentials' });
    }
    if (rule.bare && (url.search !== '' || url.hash !== '')) {
      ctx.addIssue({ code: 'custom', message: 'must not contain a query or fragment' });
    }
  });
}

const HTTP = ['http:', 'https:'];
const usd = z.number().finite().min(0).max(MAX_USD);
const whole = (min: number) => z.number().int().min(min);
const emptyToNull = (value: string): string | null => (value === '' ? null : value);
const withoutTrailingSlash = (url: string): string => url.replace(/\/+$/, '');
const optionalMicro = (value: number | undefined): number | null =>
  value === undefined ? null : usdToMicro(value);

function defaultPublicUrl(host: string, port: number): string {
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** One exact origin, as a browser sends it in `Origin`: no path, no trailing slash, no wildcard. */
const originField = z.string().superRefine((value, ctx) => {
  const origin = URL.canParse(value) ? new URL(value) : null;
  // `*` parses as a host character but is no origin a browser sends: a pattern here is a mistake.
  if (!origin || !HTTP.includes(origin.protocol) || origin.origin !== value || value.includes('*')) {
    ctx.addIssue({ code: 'custom', message: 'expected an exact origin such as https://app.example.com' });
  }
});

const serverSection = z
  .object({
    host: z.string().min(1).default('127.0.0.1'),
    port: z.number().int().min(0).max(65535).default(8420),
    /** Defaults to http://{host}:{port}; stored without a trailing slash. */
    public_url: urlField({ protocols: HTTP, expected: 'an http(s) URL' }).optional(),
    trust_proxy: z.boolean().default(false),
    body_limit_bytes: whole(1).default(32 * 1024 * 1024),
    json_max_depth: whole(1).default(64),
    /** On SIGTERM/SIGINT, how long requests and streams in flight may run before they are cut. */
    shutdown_grace_s: whole(0).max(3600).default(30),
    /** Exact origins (scheme://host[:port]) allowed to call the API from a browser; [] = no CORS at all. */
    cors_origins: z.array(originField).max(100).default([]),
  })
  .strict()
  .transform((s) => ({
    ...s,
    public_url: withoutTrailingSlash(s.public_url ?? defaultPublicUrl(s.host, s.port)),
  }));

const databaseSection = z
  .object({
    /** "" means sqlite:$TOLLGATE_HOME/tollgate.db; the loader turns this into a DatabaseConfig. */
    url: z
      .string()
      .default('')
      .superRefine((value, ctx) => {
        if (value === '' || /^sqlite:./.test(value)) return;
        const ok = /^postgres(?:ql)?:\/\//.test(value) && URL.canParse(value);
        if (!ok) ctx.addIssue({ code: 'custom', message: 'expected sqlite:PATH or postgres://USER@HOST/DB' });
      }),
  })
  .strict();

const redisSection = z
  .object({
    url: urlField({
      protocols: ['redis:', 'rediss:'],
      expected: 'a redis:// or rediss:// URL',
      allowEmpty: true,
    })
      .default('')
      .transform(emptyToNull),
    /** Prefix of every Redis key Tollgate writes; instances that share limits share it. */
    key_prefix: z
      .string()
      .max(100)
      .regex(/^[\x21-\x7e]*$/, 'printable ASCII without spaces')
      .default('tollgate:'),
  })
  .strict();

const upstreamSection = z
  .object({
    anthropic_base_url: urlField({ protocols: HTTP, expected: 'an http(s) URL', bare: true })
      .default('https://api.anthropic.com')
      .transform(withoutTrailingSlash),
    timeout_ms: whole(1).default(600_000),
    max_retries: whole(0).max(10).default(2),
    validate_timeout_ms: whole(1).default(10_000),
    /**
     * HTTP proxy for every outbound call (`http://[user:pass@]host:port`); HTTPS destinations are reached
     * through CONNECT tunnels. "" = connect directly.
     */
    proxy_url: z
      .string()
      .default('')
      .superRefine((value, ctx) => {
        const problem = value === '' ? null : proxyUrlProblem(value);
        if (problem !== null) ctx.addIssue({ code: 'custom', message: problem });
      })
      .transform(emptyToNull),
    /** Hosts reached without the proxy (NO_PROXY syntax); the NO_PROXY / no_proxy variables set it too. */
    no_proxy: z.string().default(''),
    /** PEM file of CA certificates trusted in addition to Node's defaults; checked (and made absolute) at load. */
    ca_file: z.string().default('').transform(emptyToNull),
  })
  .strict();

// Never repeats the value: it may carry the proxy's password.
function proxyUrlProblem(value: string): string | null {
  if (!URL.canParse(value)) return 'expected http://[user:pass@]host:port';
  const url = new URL(value);
  if (url.protocol !== 'http:') return 'expected an http:// proxy URL (HTTPS is tunnelled through it)';
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '')
    return 'must not contain a path, query or fragment';
  return null;
}

/** Third-party APIs the self-service API validates tokens against (configurable so tests use local fakes). */
const integrationsSection = z
  .object({
    github_api_url: urlField({ protocols: HTTP, expected: 'an http(s) URL', bare: true })
      .default('https://api.github.com')
      .transform(withoutTrailingSlash),
    linear_api_url: urlField({ protocols: HTTP, expected: 'an http(s) URL', bare: true })
      .default('https://api.linear.app')
      .transform(withoutTrailingSlash),
  })
  .strict();

const claudeSection = z
  .object({
    default_model: z.string().min(1).default('claude-sonnet-4-6'),
    /** Empty means every model of the price table. */
    models_allowed: z.array(z.string().min(1)).default([]),
    max_monthly_spend_usd: usd.nullable().default(null),
    per_coder_monthly_limit_usd: usd.nullable().default(null),
    prompt_caching: z.enum(['auto', 'off']).default('auto'),
    otel_endpoint: urlField({ protocols: HTTP, expected: 'an http(s) URL or ""', allowEmpty: true }).default(
      '',
    ),
    otel_interval_s: whole(1).default(10),
  })
  .strict()
  .superRefine((c, ctx) => {
    const cap = c.max_monthly_spend_usd;
    const perCoder = c.per_coder_monthly_limit_usd;
    if (cap !== null && perCoder !== null && perCoder > cap) {
      ctx.addIssue({
        code: 'custom',
        path: ['per_coder_monthly_limit_usd'],
        message: `must not exceed claude.max_monthly_spend_usd (${cap})`,
      });
    }
  })
  .transform(({ max_monthly_spend_usd, per_coder_monthly_limit_usd, otel_endpoint, ...rest }) => ({
    ...rest,
    /** Org-wide monthly cap in micro-USD; null = no limit. */
    max_monthly_spend_micro: max_monthly_spend_usd === null ? null : usdToMicro(max_monthly_spend_usd),
    /** Default monthly budget of each new user in micro-USD; null = no limit. */
    per_coder_monthly_limit_micro:
      per_coder_monthly_limit_usd === null ? null : usdToMicro(per_coder_monthly_limit_usd),
    /** OTLP/HTTP base URL; null = export off. */
    otel_endpoint: otel_endpoint === '' ? null : withoutTrailingSlash(otel_endpoint),
  }));

const alertsSection = z
  .object({
    webhook_url: urlField({ protocols: HTTP, expected: 'an http(s) URL', allowEmpty: true })
      .default('')
      .transform(emptyToNull),
    thresholds: z.array(z.number()).default([0.5, 0.8, 1.0]),
    /** Lets the webhook reach link-local (169.254.0.0/16, fe80::/10) and cloud metadata addresses. */
    webhook_allow_link_local: z.boolean().default(false),
  })
  .strict()
  .superRefine((a, ctx) => {
    const problem =
      a.webhook_url === null ? null : webhookUrlProblem(a.webhook_url, a.webhook_allow_link_local);
    if (problem !== null) ctx.addIssue({ code: 'custom', path: ['webhook_url'], message: problem });
    a.thresholds.forEach((t, i) => {
      const path = ['thresholds', i];
      if (!(t > 0 && t <= 1))
        ctx.addIssue({ code: 'custom', path, message: 'must be greater than 0 and at most 1' });
      const previous = a.thresholds[i - 1];
      if (previous !== undefined && t <= previous) {
        ctx.addIssue({
          code: 'custom',
          path,
          message: `thresholds must be ascending (${t} follows ${previous})`,
        });
      }
    });
  });

const DEFAULT_DENY = [
  'Read(./.secrets.data.yml)',
  'Read(./keys/prod_*)',
  'Read(./**/*.sql)',
  'Read(./**/*.sql.gz)',
  'Read(./.env)',
  'Read(./.env.*)',
];

const modelPrice = z
  .object({
    input_usd_per_mtok: usd,
    output_usd_per_mtok: usd,
    cache_write_5m_usd_per_mtok: usd.optional(),
    cache_write_1h_usd_per_mtok: usd.optional(),
    cache_read_usd_per_mtok: usd.optional(),
    min_cacheable_tokens: whole(0).optional(),
  })
  .strict()
  // Prices per million tokens in micro-USD; null = use the built-in rule (e.g. cache read = 0.1 × input).
  .transform((p) => ({
    input_micro_per_mtok: usdToMicro(p.input_usd_per_mtok),
    output_micro_per_mtok: usdToMicro(p.output_usd_per_mtok),
    cache_write_5m_micro_per_mtok: optionalMicro(p.cache_write_5m_usd_per_mtok),
    cache_write_1h_micro_per_mtok: optionalMicro(p.cache_write_1h_usd_per_mtok),
    cache_read_micro_per_mtok: optionalMicro(p.cache_read_usd_per_mtok),
    min_cacheable_tokens: p.min_cacheable_tokens ?? null,
  }));

const oidcSection = z
  .object({
    /** The provider's issuer URL (its discovery document is read from it); "" = single sign-on off. */
    issuer: urlField({ protocols: HTTP, expected: 'an http(s) URL', allowEmpty: true }).default(''),
    client_id: z.string().default(''),
    /** env:NAME or file:PATH; "" = a public client (PKCE only). */
    client_secret: z.string().default(''),
    scopes: z.array(z.string().min(1)).default(['openid', 'email', 'profile']),
    /** The ID token / userinfo claim that lists the person's groups. */
    groups_claim: z.string().min(1).default('groups'),
    /** Provider group → Tollgate team and role, applied at every sign-in. */
    group_map: z
      .record(
        z.string().min(1),
        z
          .object({ team: z.string().min(1).optional(), role: z.enum(['admin', 'member']).optional() })
          .strict(),
      )
      .default({}),
    /** Email domains whose people may sign in (and be created); [] = no domain rule. */
    allowed_domains: z.array(z.string().min(1)).default([]),
    /** How often a session asks the provider again (refresh token) whether the person still has access. */
    recheck_minutes: whole(1)
      .max(24 * 60)
      .default(10),
  })
  .strict()
  .superRefine((o, ctx) => {
    if (o.issuer === '') return;
    if (o.client_id === '')
      ctx.addIssue({ code: 'custom', path: ['client_id'], message: 'required with issuer' });
    if (!o.scopes.includes('openid'))
      ctx.addIssue({ code: 'custom', path: ['scopes'], message: 'must include openid' });
  })
  .transform((o) =>
    o.issuer === ''
      ? null
      : {
          ...o,
          issuer: o.issuer,
          allowed_domains: o.allowed_domains.map((d) => d.toLowerCase().replace(/^@/, '')),
        },
  );

const authSection = z
  .object({
    /** A session not used for this long ends. */
    session_idle_minutes: whole(1)
      .max(7 * 24 * 60)
      .default(120),
    /** A session ends this long after sign-in, however busy. */
    session_max_hours: whole(1)
      .max(90 * 24)
      .default(24),
    oidc: oidcSection.default({}),
  })
  .strict();

export const configFileSchema = z
  .object({
    server: serverSection.default({}),
    database: databaseSection.default({}),
    redis: redisSection.default({}),
    upstream: upstreamSection.default({}),
    claude: claudeSection.default({}),
    security: z
      .object({ key_max_age_days: whole(1).max(3650).default(90) })
      .strict()
      .default({}),
    alerts: alertsSection.default({}),
    metrics: z
      .object({
        /** Bearer token GET /metrics requires ("" = open); a secret (env:/file: references work). */
        token: z.string().default('').transform(emptyToNull),
        /** Distinct users with a label of their own; later users are counted under "other". */
        max_user_labels: whole(0).max(10_000).default(100),
      })
      .strict()
      .default({}),
    claude_code: z
      .object({ deny: z.array(z.string().min(1)).default(DEFAULT_DENY) })
      .strict()
      .default({}),
    /** Per-model overrides of the built-in price table, keyed by model id. */
    pricing: z.record(z.string().min(1), modelPrice).default({}),
    audit: z
      .object({
        /** A file outside the database that receives each committed audit chain head; "" = none. */
        witness_path: z.string().default('').transform(emptyToNull),
      })
      .strict()
      .default({}),
    integrations: integrationsSection.default({}),
    auth: authSection.default({}),
    usage: z
      .object({
        /** IANA timezone in which usage reports cut their days (budgets keep their UTC periods). */
        timezone: z
          .string()
          .default('UTC')
          .refine(isTimeZone, { message: 'expected an IANA timezone such as UTC or Europe/Paris' }),
        /**
         * Raw usage rows older than this many whole days are pruned by `tollgate serve` (the 15-minute
         * rollups and daily sums the reports read are kept); null = keep them forever.
         */
        retention_days: whole(1).max(36_500).nullable().default(null),
      })
      .strict()
      .default({}),
    logging: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      })
      .strict()
      .default({}),
  })
  .strict();

/** tollgate.yml after defaults, validation and conversion (money in micro-USD). */
export type FileConfig = z.output<typeof configFileSchema>;
export type ModelPriceOverride = FileConfig['pricing'][string];
export type LogLevel = FileConfig['logging']['level'];
export type OidcConfig = NonNullable<FileConfig['auth']['oidc']>;

// ---- Reading a key's type, to coerce text from environment variables and env:/file: references ----

function unwrap(type: z.ZodTypeAny): { type: z.ZodTypeAny; nullable: boolean } {
  let nullable = false;
  for (;;) {
    if (type instanceof z.ZodDefault) type = type._def.innerType;
    else if (type instanceof z.ZodOptional) type = type.unwrap();
    else if (type instanceof z.ZodNullable) [type, nullable] = [type.unwrap(), true];
    else if (type instanceof z.ZodEffects) type = type.innerType();
    else return { type, nullable };
  }
}

function fieldAt(path: KeyPath): { type: z.ZodTypeAny; nullable: boolean } | undefined {
  let field = unwrap(configFileSchema);
  for (const part of path) {
    const { type } = field;
    let next: z.ZodTypeAny | undefined;
    const shape: z.ZodRawShape = type instanceof z.ZodObject ? type.shape : {};
    if (typeof part === 'string' && Object.hasOwn(shape, part)) next = shape[part];
    else if (type instanceof z.ZodRecord) next = type.valueSchema;
    else if (type instanceof z.ZodArray) next = type.element;
    if (next === undefined) return undefined;
    field = unwrap(next);
  }
  return field;
}

/** Every overridable key: [section, key] for sections of fixed keys, [section] for maps (pricing). */
export const OVERRIDABLE_PATHS: ReadonlyArray<readonly string[]> = Object.entries(
  configFileSchema.shape,
).flatMap(([section, type]) => {
  const inner = unwrap(type).type;
  return inner instanceof z.ZodObject ? Object.keys(inner.shape).map((key) => [section, key]) : [[section]];
});

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function coerce(type: z.ZodTypeAny, nullable: boolean, text: string): unknown {
  const trimmed = text.trim();
  if (nullable && (trimmed === '' || trimmed === 'null')) return null;
  if (type instanceof z.ZodNumber || type instanceof z.ZodBoolean) {
    if (trimmed === '') return undefined;
    if (type instanceof z.ZodBoolean) return trimmed === 'true' ? true : trimmed === 'false' ? false : text;
    return /^-?\d+(?:\.\d+)?$/.test(trimmed) ? Number(trimmed) : text;
  }
  if (type instanceof z.ZodArray) {
    if (trimmed.startsWith('[')) return parseJson(trimmed) ?? text;
    const element = unwrap(type.element);
    const items = trimmed === '' ? [] : trimmed.split(',');
    return items.map((item) => coerce(element.type, element.nullable, item.trim()) ?? item.trim());
  }
  if (type instanceof z.ZodObject || type instanceof z.ZodRecord) return parseJson(trimmed) ?? text;
  return text;
}

/**
 * Turns text (an environment variable or a resolved reference) into the value the key expects: numbers,
 * true/false, lists (comma-separated or JSON), maps (JSON). Text that does not fit is returned unchanged
 * so the schema reports it; undefined means "treat as unset" (an empty number or boolean variable).
 */
export function coerceText(path: KeyPath, text: string): unknown {
  const field = fieldAt(path);
  return field ? coerce(field.type, field.nullable, text) : text;
}
