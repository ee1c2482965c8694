// An operation of the admin or self-service API, described once: its route, the zod schemas its
// input is validated with, the schema of its answer, and what it does. The HTTP routes, the OpenAPI
// document and the CLI (local and remote) are all built from these descriptions, so the rules, the
// validation and the output exist in one place.
import { z } from 'zod/v4';
import type { LiveFigures } from '../budgets/budget-status.js';
import type { Config } from '../config/load.js';
import type { Actor } from '../install/context.js';
import type { Installation } from '../install/installation.js';
import type { Services } from '../services.js';
import type { Principal } from './principal.js';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/**
 * What a budget read can know beyond the database: the serving process's figures of one scope and
 * period (spent as its book counts it, and in-flight reservations), or null when it holds none.
 */
export type BudgetReader = LiveFigures;

/** Everything an operation may use; built per request (HTTP) or per command (local CLI). */
export interface OpContext {
  readonly services: Services;
  readonly installation: Installation;
  readonly config: Config;
  readonly principal: Principal;
  readonly actor: Actor;
  readonly requestId: string;
  /** The caller's address (HTTP) or `local` (CLI), for per-IP throttles. */
  readonly clientIp: string;
  readonly now: () => number;
  /** Present when running inside `tollgate serve` (the gateway's budget book). */
  readonly budgets: BudgetReader | null;
  /** Process-wide helpers shared by the operations of one server (throttles, validators). */
  readonly shared: SharedState;
}

/** State kept across requests of one process (attempt throttles, provider validation endpoints). */
export interface SharedState {
  readonly [name: string]: unknown;
}

const NONE = z.strictObject({});
type None = typeof NONE;

export interface OpSpec<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType, R extends z.ZodType> {
  /** Stable operation id (OpenAPI `operationId`), e.g. `teams.list`. */
  readonly id: string;
  readonly method: HttpMethod;
  /** OpenAPI-style path, e.g. `/admin/v1/teams/{team}`. */
  readonly path: string;
  readonly summary: string;
  readonly tag: string;
  readonly params?: P;
  readonly query?: Q;
  readonly body?: B;
  readonly response: R;
  /** Success status (200 unless given). */
  readonly status?: number;
  readonly run: (
    ctx: OpContext,
    input: { params: z.output<P>; query: z.output<Q>; body: z.output<B> },
  ) => Promise<z.input<R>>;
}

/** An operation with its types erased, as the route builder, the OpenAPI generator and the CLI see it. */
export interface Operation {
  readonly id: string;
  readonly method: HttpMethod;
  readonly path: string;
  readonly summary: string;
  readonly tag: string;
  readonly params: z.ZodType;
  readonly query: z.ZodType;
  readonly body: z.ZodType | null;
  readonly response: z.ZodType;
  readonly status: number;
  readonly run: (
    ctx: OpContext,
    input: { params: unknown; query: unknown; body: unknown },
  ) => Promise<unknown>;
}

export function defineOp<
  P extends z.ZodType = None,
  Q extends z.ZodType = None,
  B extends z.ZodType = None,
  R extends z.ZodType = z.ZodType,
>(spec: OpSpec<P, Q, B, R>): Operation {
  return {
    id: spec.id,
    method: spec.method,
    path: spec.path,
    summary: spec.summary,
    tag: spec.tag,
    params: spec.params ?? NONE,
    query: spec.query ?? NONE,
    body: spec.body ?? null,
    response: spec.response,
    status: spec.status ?? 200,
    run: spec.run as Operation['run'],
  };
}

/** Input as a caller gives it (strings from a URL, JSON from a body); validated by `parseInput`. */
export interface RawInput {
  readonly params?: Record<string, string>;
  readonly query?: Record<string, unknown>;
  readonly body?: unknown;
}
