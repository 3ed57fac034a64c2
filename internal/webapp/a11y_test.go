package webapp_test

import (
	"encoding/json"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// a11yReport is what the page says about its own accessibility.
type a11yReport struct {
	Unlabelled []string `json:"unlabelled"`
	Contrast   []struct {
		Where string  `json:"where"`
		Ratio float64 `json:"ratio"`
	} `json:"contrast"`
	Overflow bool `json:"overflow"`
}

// a11yScript names every interactive element without an accessible name
// (aria-label, aria-labelledby, a <label>, its text, or an image alt), and
// measures the WCAG contrast of main text (body, headings, list text,
// muted text) against the page background.
const a11yScript = `(() => {
  const name = (el) => {
    if (el.getAttribute('aria-label')) return el.getAttribute('aria-label');
    const by = el.getAttribute('aria-labelledby');
    if (by) return by.split(' ').map(id => (document.getElementById(id) || {}).textContent || '').join(' ');
    if (el.labels && el.labels.length) return Array.from(el.labels).map(l => l.textContent).join(' ');
    if (el.tagName === 'INPUT' && (el.type === 'submit' || el.type === 'button')) return el.value;
    return (el.textContent || '').trim() || el.getAttribute('title') || '';
  };
  const visible = (el) => el.offsetParent !== null || getComputedStyle(el).position === 'fixed';
  const unlabelled = Array.from(document.querySelectorAll('a[href], button, input, select, textarea, [tabindex]'))
    .filter(el => visible(el) && el.getAttribute('type') !== 'hidden' && el.id !== 'main' && !name(el).trim())
    .map(el => el.outerHTML.slice(0, 120));
  const rgb = (s) => s.match(/[\d.]+/g).slice(0, 3).map(Number);
  const lum = ([r, g, b]) => { const f = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  const bgOf = (el) => { for (let e = el; e; e = e.parentElement) { const c = getComputedStyle(e).backgroundColor;
    if (c && !c.startsWith('rgba(0, 0, 0, 0)') && c !== 'transparent') return rgb(c); } return rgb(getComputedStyle(document.documentElement).backgroundColor); };
  const ratio = (el) => { const a = lum(rgb(getComputedStyle(el).color)), b = lum(bgOf(el)); return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05); };
  const contrast = Array.from(document.querySelectorAll('main h1, main h2, main p, main li .title, main li .sub, main label, #player .title, #player .sub, nav.main a'))
    .filter(visible).map(el => ({where: el.tagName + '.' + el.className + ': ' + (el.textContent || '').slice(0, 30), ratio: ratio(el)}));
  return JSON.stringify({unlabelled, contrast, overflow: document.documentElement.scrollWidth > window.innerWidth + 1});
})()`

// checkA11y fails on an unlabelled control or main text under 4.5:1.
func checkA11y(t *testing.T, b *tab, page string) {
	t.Helper()
	var r a11yReport
	require.NoError(t, json.Unmarshal([]byte(evalIn[string](b, a11yScript)), &r))
	require.Empty(t, r.Unlabelled, "%s: controls without an accessible name", page)
	require.NotEmpty(t, r.Contrast, "%s: no text measured", page)
	for _, c := range r.Contrast {
		require.GreaterOrEqual(t, c.Ratio, 4.5, "%s: contrast of %s", page, c.Where)
	}
	require.False(t, r.Overflow, "%s: the page scrolls sideways", page)
}

// tabReaches presses Tab from the top of the page up to 80 times and
// reports which of the selectors got the keyboard focus.
func tabReaches(t *testing.T, b *tab, selectors ...string) {
	t.Helper()
	evalIn[any](b, `(() => { document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); window.__focused = []; 
		document.addEventListener('focusin', e => window.__focused.push(e.target), true); return null; })()`)
	for range 80 {
		b.do(chromedp.KeyEvent("\t"))
	}
	for _, sel := range selectors {
		if !evalIn[bool](b, `window.__focused.some(el => el.matches(`+jsString(sel)+`))`) {
			t.Fatalf("%s is not reachable with Tab; the focus went to: %s", sel, evalIn[string](b,
				`window.__focused.map(el => el.tagName + (el.id ? '#' + el.id : '') + ' ' + (el.getAttribute('aria-label') || el.textContent || '').trim().slice(0, 25)).join(' | ')`))
		}
	}
}
