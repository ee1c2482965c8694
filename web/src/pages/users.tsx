// Users and teams: teams and people with their budget bars (spent, reserved, remaining), and what an
// admin does to them — create, set budgets, disable/enable, remove, invite. Everything goes through
// /admin/v1 (teams, users, budgets, login-link), the ops the CLI uses.
import { useState } from 'preact/hooks';
import { get } from '../api.js';
import { when } from '../format.js';
import type { SignedInProps } from '../routes.js';
import { CopyField, ErrorNote, Loading, Page, useLoad } from '../ui/kit.js';
import type { Activity } from './anthropic.js';
import { type Budget, budgetsById, listAll, type Team, type User } from './users-api.js';
import { type LoginLink, PeopleSection } from './users-people.js';
import { TeamsSection } from './users-teams.js';

async function loadAll() {
  const [teams, users, budgets, claudeCode] = await Promise.all([
    listAll<Team>('/admin/v1/teams'),
    listAll<User>('/admin/v1/users'),
    listAll<Budget>('/admin/v1/budgets'),
    get<{ actors: Activity[] }>('/admin/v1/anthropic/claude-code'),
  ]);
  // Each coder's Claude Code activity (imported by `anthropic sync`), by the user their email matches.
  const activity = new Map<string, Activity>();
  for (const a of claudeCode.actors) if (a.user_id !== null) activity.set(a.user_id, a);
  return { teams, users, budgets, activity };
}

export function UsersPage(_props: SignedInProps) {
  const loaded = useLoad(loadAll, []);
  // The invite link lives here only until "Done"; it is never put in a URL or stored.
  const [link, setLink] = useState<LoginLink | null>(null);
  const data = loaded.data;
  return (
    <Page title="Users & teams" intro="People, service accounts and teams, with their budgets this period.">
      <ErrorNote error={loaded.error} />
      {link ? (
        <section class="card shown-once" aria-labelledby="invite-heading">
          <h2 id="invite-heading">Invite link for {link.user}</h2>
          <p>
            Send this link to {link.user} privately. It works once, until {when(link.expires_at)}, and is not
            shown again.
          </p>
          <CopyField id="invite-link" label="Invite link" value={link.url} />
          <button type="button" class="primary" onClick={() => setLink(null)}>
            Done
          </button>
        </section>
      ) : null}
      {!data ? (
        loaded.error ? null : (
          <Loading what="users and teams" />
        )
      ) : (
        <>
          <TeamsSection
            teams={data.teams}
            budgets={budgetsById(data.budgets, 'team')}
            onChanged={loaded.reload}
          />
          <PeopleSection
            users={data.users}
            teams={data.teams}
            budgets={budgetsById(data.budgets, 'user')}
            activity={data.activity}
            onChanged={loaded.reload}
            onLink={setLink}
          />
        </>
      )}
    </Page>
  );
}
