// A signed-in URL that is no page.
import { Page } from '../ui/kit.js';

export function NotFoundPage() {
  return (
    <Page title="Not found">
      <p>
        There is no page here. <a href="/settings">Go to my settings</a>.
      </p>
    </Page>
  );
}
