// Every self-service API operation (`/api/v1/me`), authenticated as the user.
import type { Operation } from '../operation.js';
import { credentialOps } from './credentials.ops.js';
import { keyOps } from './keys.ops.js';
import { profileOps } from './profile.ops.js';
import { usageOps } from './usage.ops.js';

export const ME_OPS: readonly Operation[] = [...profileOps, ...credentialOps, ...keyOps, ...usageOps];
