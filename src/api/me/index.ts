// Every self-service API operation (`/api/v1/me`), authenticated as the user.
import type { Operation } from '../operation.js';

export const ME_OPS: readonly Operation[] = [];
