package notification

import (
	"bytes"
	"embed"
	"fmt"
	htmltemplate "html/template"
	"strings"
	"sync"
	texttemplate "text/template"
	"time"
)

// Kind names one email this service writes; it is also the file name of its
// templates under templates/<locale>/.
type Kind string

// The emails, one per consumed event type.
const (
	KindConfirmEmail              Kind = "confirm_email"
	KindPasswordReset             Kind = "password_reset"
	KindSubscriptionActivated     Kind = "subscription_activated"
	KindPaymentFailed             Kind = "payment_failed"
	KindPaymentRefunded           Kind = "payment_refunded"
	KindSubscriptionRenewed       Kind = "subscription_renewed"
	KindSubscriptionRenewalFailed Kind = "subscription_renewal_failed"
	KindSubscriptionCanceled      Kind = "subscription_canceled"
	KindSubscriptionExpired       Kind = "subscription_expired"
	KindIngestionFailed           Kind = "ingestion_failed"
)

// Kinds lists every email kind.
var Kinds = []Kind{
	KindConfirmEmail, KindPasswordReset, KindSubscriptionActivated, KindPaymentFailed,
	KindPaymentRefunded, KindSubscriptionRenewed, KindSubscriptionRenewalFailed,
	KindSubscriptionCanceled, KindSubscriptionExpired, KindIngestionFailed,
}

// Locales are the languages templates exist for; the first is the fallback.
var Locales = []string{"en", "ru"}

// Locale maps a user's locale ("ru", "ru-RU", "EN_us", "") to one templates
// exist for, English when there is none.
func Locale(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	if i := strings.IndexAny(s, "-_"); i >= 0 {
		s = s[:i]
	}
	for _, l := range Locales {
		if s == l {
			return l
		}
	}
	return Locales[0]
}

//go:embed templates
var templateFS embed.FS

// Rendered is one email's content.
type Rendered struct {
	Subject string
	Text    string
	HTML    string
}

type templateKey struct {
	locale string
	kind   Kind
}

type templateSet struct {
	subject *texttemplate.Template
	text    *texttemplate.Template
	html    *htmltemplate.Template
}

// templates parses every locale × kind once; a missing or broken file is an
// error at Start, not at the first email of that kind.
var templates = sync.OnceValues(func() (map[templateKey]templateSet, error) {
	sets := map[templateKey]templateSet{}
	for _, locale := range Locales {
		for _, kind := range Kinds {
			base := "templates/" + locale + "/" + string(kind)
			var s templateSet
			var err error
			if s.subject, err = texttemplate.New(string(kind)+".subject.tmpl").Option("missingkey=error").
				ParseFS(templateFS, base+".subject.tmpl"); err != nil {
				return nil, fmt.Errorf("template %s.subject.tmpl: %w", base, err)
			}
			if s.text, err = texttemplate.New(string(kind)+".txt.tmpl").Option("missingkey=error").
				ParseFS(templateFS, base+".txt.tmpl"); err != nil {
				return nil, fmt.Errorf("template %s.txt.tmpl: %w", base, err)
			}
			// The HTML body is the locale's layout around the kind's "content".
			if s.html, err = htmltemplate.New("layout.html.tmpl").Option("missingkey=error").
				ParseFS(templateFS, "templates/"+locale+"/layout.html.tmpl", base+".html.tmpl"); err != nil {
				return nil, fmt.Errorf("template %s.html.tmpl: %w", base, err)
			}
			if s.html.Lookup("content") == nil {
				return nil, fmt.Errorf("template %s.html.tmpl defines no \"content\"", base)
			}
			sets[templateKey{locale, kind}] = s
		}
	}
	return sets, nil
})

// Render fills kind's templates for locale with values. Every key a template
// uses must be in values (missingkey=error); optional facts are present as "".
// The subject is folded onto one line.
func Render(kind Kind, locale string, values map[string]any) (Rendered, error) {
	sets, err := templates()
	if err != nil {
		return Rendered{}, err
	}
	locale = Locale(locale)
	s, ok := sets[templateKey{locale, kind}]
	if !ok {
		return Rendered{}, fmt.Errorf("no templates for email kind %q", kind)
	}
	var r Rendered
	var b bytes.Buffer
	if err := s.subject.Execute(&b, values); err != nil {
		return Rendered{}, fmt.Errorf("render %s/%s subject: %w", locale, kind, err)
	}
	r.Subject = strings.Join(strings.Fields(b.String()), " ")
	if r.Subject == "" {
		return Rendered{}, fmt.Errorf("render %s/%s: empty subject", locale, kind)
	}
	b.Reset()
	if err := s.text.Execute(&b, values); err != nil {
		return Rendered{}, fmt.Errorf("render %s/%s text: %w", locale, kind, err)
	}
	r.Text = strings.TrimSpace(b.String()) + "\n"
	withSubject := make(map[string]any, len(values)+1)
	for k, v := range values {
		withSubject[k] = v
	}
	withSubject["Subject"] = r.Subject
	b.Reset()
	if err := s.html.Execute(&b, withSubject); err != nil {
		return Rendered{}, fmt.Errorf("render %s/%s html: %w", locale, kind, err)
	}
	r.HTML = b.String()
	return r, nil
}

var ruMonths = [...]string{"января", "февраля", "марта", "апреля", "мая", "июня", "июля",
	"августа", "сентября", "октября", "ноября", "декабря"}

// formatDate writes a calendar date the way the locale reads it, in UTC.
func formatDate(locale string, t *time.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	u := t.UTC()
	if locale == "ru" {
		return fmt.Sprintf("%d %s %d г.", u.Day(), ruMonths[u.Month()-1], u.Year())
	}
	return u.Format("2 January 2006")
}

// formatDateTime is formatDate with the time of day (UTC), for link expiry
// and retry moments.
func formatDateTime(locale string, t *time.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return formatDate(locale, t) + ", " + t.UTC().Format("15:04") + " UTC"
}

// formatMoney writes an amount in minor units: "1 990,00 ₽" in Russian,
// "RUB 1,990.00" in English.
func formatMoney(locale string, minor int64, currency string) string {
	if currency == "" && minor == 0 {
		return ""
	}
	neg := minor < 0
	if neg {
		minor = -minor
	}
	major, frac := minor/100, minor%100
	sep, dec := ",", "."
	if locale == "ru" {
		sep, dec = "\u00a0", ","
	}
	digits := fmt.Sprint(major)
	var grouped strings.Builder
	for i, c := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			grouped.WriteString(sep)
		}
		grouped.WriteRune(c)
	}
	num := fmt.Sprintf("%s%s%02d", grouped.String(), dec, frac)
	if neg {
		num = "-" + num
	}
	currency = strings.ToUpper(currency)
	if locale == "ru" {
		if currency == "RUB" {
			return num + "\u00a0₽"
		}
		return num + "\u00a0" + currency
	}
	return strings.TrimSpace(currency + " " + num)
}

var planNames = map[string]map[string]string{
	"en": {"monthly": "Premium, monthly", "annual": "Premium, annual"},
	"ru": {"monthly": "Премиум на месяц", "annual": "Премиум на год"},
}

// formatPlan names a plan in the locale; unknown plans keep their code.
func formatPlan(locale, plan string) string {
	if n, ok := planNames[locale][plan]; ok {
		return n
	}
	if plan == "" {
		return "Premium"
	}
	return plan
}
