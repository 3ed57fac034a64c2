// ops: the admin console's operations pages — dead letters with re-drive,
// the CDN (POP health, hit ratios, purge, warm) and statistics charts.
// Placeholder pages until they are built (issue 15).

import { h } from '../dom';
import { t } from '../i18n';

const pending = (): Node => h('div', null, h('h1', null, t('nav.admin')));

export async function deadLettersPage(): Promise<Node> { return pending(); }
export async function cdnPage(): Promise<Node> { return pending(); }
export async function statsPage(): Promise<Node> { return pending(); }
