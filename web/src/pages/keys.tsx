// Gateway keys: issue one (shown once with its Claude Code line), list them with their policies,
// filter by user and status (kept in the address, so a filtered view is a link), rotate and revoke.
// Everything goes through /admin/v1/keys, /users and /profiles, the ops the CLI uses.
import { useState } from 'preact/hooks';
import type { SignedInProps } from '../routes.js';
import { ErrorNote, Field, Loading, Page, useLoad } from '../ui/kit.js';
import { IssueKey, type Profile } from './keys-issue.js';
import { KeyList } from './keys-list.js';
import { type IssuedKey, type Key, ShownKey } from './keys-shown.js';
import { listAll, type User } from './users-api.js';

type StatusFilter = 'active' | 'revoked' | 'expired' | '';

function filtersFromUrl(): { user: string; status: StatusFilter } {
  const search = new URLSearchParams(location.search);
  const status = search.get('status');
  return {
    user: search.get('user') ?? '',
    status: status === 'revoked' || status === 'expired' || status === '' ? status : 'active',
  };
}

export function KeysPage(_props: SignedInProps) {
  const [filters, setFilters] = useState(filtersFromUrl);
  // The key just issued or rotated: only here, only until "Done".
  const [shown, setShown] = useState<IssuedKey | null>(null);
  const people = useLoad(
    () => Promise.all([listAll<User>('/admin/v1/users'), listAll<Profile>('/admin/v1/profiles')]),
    [],
  );
  const keys = useLoad(
    () =>
      listAll<Key>('/admin/v1/keys', {
        user: filters.user || undefined,
        status: filters.status || undefined,
      }),
    [filters.user, filters.status],
  );
  function filter(next: Partial<typeof filters>) {
    const merged = { ...filters, ...next };
    const search = new URLSearchParams();
    if (merged.user) search.set('user', merged.user);
    if (merged.status !== 'active') search.set('status', merged.status);
    const text = search.toString();
    history.replaceState(null, '', text ? `?${text}` : location.pathname);
    setFilters(merged);
  }
  const shownChanged = (issued: IssuedKey) => {
    setShown(issued);
    keys.reload();
  };
  const [users, profiles] = people.data ?? [[], []];
  return (
    <Page title="Gateway keys" intro="Keys people and services use to call the gateway, and their policies.">
      <ErrorNote error={people.error ?? keys.error} />
      {shown ? (
        <ShownKey
          issued={shown}
          onDone={() => {
            setShown(null);
            keys.reload();
          }}
        />
      ) : null}
      {people.data ? <IssueKey users={users} profiles={profiles} onIssued={shownChanged} /> : null}
      <h2>Keys</h2>
      <form class="inline filters" aria-label="Filter keys" onSubmit={(e) => e.preventDefault()}>
        <Field id="filter-user" label="User">
          <select
            id="filter-user"
            value={filters.user}
            onChange={(e) => filter({ user: e.currentTarget.value })}
          >
            <option value="">everyone</option>
            {users.map((u) => (
              <option key={u.id} value={u.id}>
                {u.name}
              </option>
            ))}
          </select>
        </Field>
        <Field id="filter-status" label="Status">
          <select
            id="filter-status"
            value={filters.status}
            onChange={(e) => filter({ status: e.currentTarget.value as StatusFilter })}
          >
            <option value="active">active</option>
            <option value="revoked">revoked</option>
            <option value="expired">expired</option>
            <option value="">all</option>
          </select>
        </Field>
      </form>
      {keys.data ? (
        <KeyList keys={keys.data} onChanged={keys.reload} onRotated={shownChanged} />
      ) : keys.error ? null : (
        <Loading what="keys" />
      )}
    </Page>
  );
}
