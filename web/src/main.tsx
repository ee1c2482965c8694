// The dashboard's entry: picks the page for this URL (every page is its own URL, reached by ordinary
// links and full page loads), checks the session, and renders it.
import { render } from 'preact';
import { currentSession, type Session } from './api.js';
import { findRoute } from './routes.js';
import { isAdmin, Layout } from './ui/layout.js';
import './styles.css';

async function start(): Promise<void> {
  const root = document.getElementById('app');
  if (!root) return;
  const path = location.pathname;
  const route = findRoute(path);
  if (route.public) {
    render(route.render({ session: null, params: route.params }), root);
    return;
  }
  let session: Session | null;
  try {
    session = await currentSession();
  } catch {
    root.textContent = 'Tollgate did not answer. Reload the page to try again.';
    return;
  }
  if (!session) {
    location.replace('/login');
    return;
  }
  if (route.admin && !isAdmin(session)) {
    location.replace('/settings');
    return;
  }
  render(
    <Layout session={session} path={route.path}>
      {route.render({ session, params: route.params })}
    </Layout>,
    root,
  );
}

void start();
