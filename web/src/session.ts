// session: the signed-in listener. The refresh token is kept in
// localStorage (the API hands it out in the body, not as a cookie); the
// access token (15 minutes at most) only in memory, renewed a minute before
// it expires or when the API says it expired.

import type { Me, Tokens } from './api';
import { setLang } from './i18n';

const REFRESH_KEY = 'overture.refresh';

type Listener = () => void;

class Session {
  private access: string | null = null;
  private accessExp = 0;
  private refreshing: Promise<string | null> | null = null;
  private listeners: Listener[] = [];
  me: Me | null = null;

  signedIn(): boolean {
    return localStorage.getItem(REFRESH_KEY) !== null;
  }

  isAdmin(): boolean {
    return !!this.me && this.me.roles.includes('admin');
  }

  onChange(f: Listener): void {
    this.listeners.push(f);
  }

  changed(): void {
    for (const f of this.listeners) f();
  }

  async set(tokens: Tokens): Promise<void> {
    localStorage.setItem(REFRESH_KEY, tokens.refresh_token);
    this.access = tokens.access_token;
    this.accessExp = Date.now() + tokens.expires_in * 1000;
    const me = await this.loadMe();
    // Signed in on a browser where no language was chosen: the account's.
    if (me && (me.locale === 'ru' || me.locale === 'en') && !localStorage.getItem('overture.lang')) setLang(me.locale);
  }

  async loadMe(): Promise<Me | null> {
    if (!this.signedIn()) {
      this.me = null;
      return null;
    }
    const token = await this.accessToken();
    if (!token) return null;
    const resp = await fetch('/v1/auth/me', { headers: { Authorization: 'Bearer ' + token, Accept: 'application/json' } });
    if (resp.ok) {
      this.me = (await resp.json()) as Me;
      // The access token carries the entitlement it was issued with; when
      // the account's has changed since (a purchase, an expiry), get a new
      // one so playback sees it at once.
      if (this.me.premium !== this.tokenPremium()) await this.accessToken(true);
      this.changed();
    }
    return this.me;
  }

  // tokenPremium is the premium claim of the access token in memory.
  private tokenPremium(): boolean {
    try {
      const part = (this.access ?? '').split('.')[1] ?? '';
      const json = atob(part.replace(/-/g, '+').replace(/_/g, '/'));
      return (JSON.parse(json) as { premium?: boolean }).premium === true;
    } catch {
      return false;
    }
  }

  // accessToken is a valid access token, refreshed when it is about to
  // expire (or always, with force: e.g. after a purchase, so the token
  // carries the new entitlement).
  async accessToken(force = false): Promise<string | null> {
    if (!force && this.access && Date.now() < this.accessExp - 60_000) return this.access;
    if (!this.signedIn()) return null;
    if (!this.refreshing) {
      this.refreshing = this.refresh().finally(() => {
        this.refreshing = null;
      });
    }
    return this.refreshing;
  }

  private async refresh(): Promise<string | null> {
    const rt = localStorage.getItem(REFRESH_KEY);
    if (!rt) return null;
    const resp = await fetch('/v1/auth/refresh', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ refresh_token: rt }),
    });
    if (resp.status === 401 || resp.status === 400) {
      this.clear();
      return null;
    }
    if (!resp.ok) return null;
    const tokens = (await resp.json()) as Tokens;
    localStorage.setItem(REFRESH_KEY, tokens.refresh_token);
    this.access = tokens.access_token;
    this.accessExp = Date.now() + tokens.expires_in * 1000;
    return this.access;
  }

  async signOut(everywhere = false): Promise<void> {
    const rt = localStorage.getItem(REFRESH_KEY);
    try {
      if (everywhere) {
        const token = await this.accessToken();
        if (token) await fetch('/v1/auth/logout-all', { method: 'POST', headers: { Authorization: 'Bearer ' + token } });
      } else if (rt) {
        await fetch('/v1/auth/logout', {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ refresh_token: rt }),
        });
      }
    } finally {
      this.clear();
    }
  }

  clear(): void {
    localStorage.removeItem(REFRESH_KEY);
    this.access = null;
    this.accessExp = 0;
    this.me = null;
    this.changed();
  }
}

export const session = new Session();
