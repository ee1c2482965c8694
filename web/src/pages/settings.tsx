// My settings (every person): own provider keys (bring your own), preferred model, own gateway keys,
// own usage and what remains of each budget. The installation admin session has no person, so it is
// sent to the admin pages instead.
import { get } from '../api.js';
import type { SignedInProps } from '../routes.js';
import { Page, useLoad } from '../ui/kit.js';
import { OwnCredentials, PreferredModel, type Settings } from './settings-credentials.js';
import { MyKeys } from './settings-keys.js';
import { MyBudgets, MyUsage } from './settings-usage.js';

export function SettingsPage(props: SignedInProps) {
  if (!props.session.user)
    return (
      <Page title="My settings">
        <p>
          You are signed in as the installation admin, which is not a person: it has no own keys, budget or
          settings. Use the admin pages: <a href="/users">Users &amp; teams</a>,{' '}
          <a href="/keys">Gateway keys</a>, <a href="/credentials">Credentials</a>.
        </p>
      </Page>
    );
  return <PersonSettings />;
}

function PersonSettings() {
  const settings = useLoad(() => get<Settings>('/api/v1/me/settings'), []);
  return (
    <Page title="My settings">
      <OwnCredentials settings={settings} />
      <PreferredModel settings={settings} />
      <MyBudgets />
      <MyKeys />
      <MyUsage />
    </Page>
  );
}
