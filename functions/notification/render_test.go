package notification

import (
	"io/fs"
	"strings"
	"testing"
	"time"
)

// sampleValues is what compose hands each kind: every key its templates may
// use, each with a recognisable value.
func sampleValues(kind Kind) map[string]any {
	v := map[string]any{"Email": "a@example.com"}
	switch kind {
	case KindConfirmEmail:
		v["ConfirmURL"], v["ExpiresAt"] = "https://x.test/confirm?token=CONFIRM", "EXPIRES"
	case KindPasswordReset:
		v["ResetURL"], v["ExpiresAt"] = "https://x.test/reset?token=RESET", "EXPIRES"
	case KindSubscriptionActivated, KindSubscriptionRenewed:
		v["Plan"], v["PeriodEnd"], v["Amount"] = "PLAN", "PERIODEND", "AMOUNT"
	case KindPaymentFailed:
		v["Amount"], v["Reason"] = "AMOUNT", "REASON"
	case KindPaymentRefunded:
		v["Amount"] = "AMOUNT"
	case KindSubscriptionRenewalFailed:
		v["Plan"], v["NextRetryAt"], v["Reason"] = "PLAN", "NEXTRETRY", "REASON"
	case KindSubscriptionCanceled:
		v["Plan"], v["PeriodEnd"] = "PLAN", "PERIODEND"
	case KindSubscriptionExpired:
		v["Plan"] = "PLAN"
	case KindIngestionFailed:
		v["Key"], v["Reason"], v["Detail"], v["UploadID"] = "KEY", "REASON", "DETAIL", "UPLOADID"
	}
	return v
}

func TestEveryKindRendersInEveryLocale(t *testing.T) {
	t.Parallel()
	for _, locale := range Locales {
		for _, kind := range Kinds {
			t.Run(locale+"/"+string(kind), func(t *testing.T) {
				values := sampleValues(kind)
				r, err := Render(kind, locale, values)
				if err != nil {
					t.Fatal(err)
				}
				if r.Subject == "" || strings.ContainsAny(r.Subject, "\r\n") {
					t.Errorf("subject %q", r.Subject)
				}
				if !strings.Contains(r.HTML, `<html lang="`+locale+`">`) || !strings.Contains(r.HTML, "<title>"+r.Subject+"</title>") {
					t.Errorf("html lacks its layout:\n%s", r.HTML)
				}
				// Every value given shows in both parts: no template forgets a fact.
				for k, v := range values {
					s := v.(string)
					if !strings.Contains(r.Text, s) && k != "Email" {
						t.Errorf("text lacks %s (%q):\n%s", k, s, r.Text)
					}
					if !strings.Contains(r.HTML, s) {
						t.Errorf("html lacks %s (%q):\n%s", k, s, r.HTML)
					}
				}
				// Optional facts may be empty, and then leave no dangling words.
				for k := range values {
					if k == "Email" || k == "Plan" || strings.HasSuffix(k, "URL") { // never empty in compose
						continue
					}
					values[k] = ""
				}
				r, err = Render(kind, locale, values)
				if err != nil {
					t.Fatalf("with optional facts empty: %v", err)
				}
				for _, dangling := range []string{"()", "« »", `""`, " .", "until .", "до ."} {
					if strings.Contains(r.Text, dangling) {
						t.Errorf("text with empty facts has %q:\n%s", dangling, r.Text)
					}
				}
			})
		}
	}
}

func TestRenderRefusesMissingKeys(t *testing.T) {
	t.Parallel()
	for _, kind := range Kinds {
		values := sampleValues(kind)
		delete(values, "Email")
		if _, err := Render(kind, "en", values); err == nil {
			t.Errorf("%s rendered without Email", kind)
		}
	}
	if _, err := Render(KindConfirmEmail, "ru", map[string]any{"Email": "a@example.com", "ExpiresAt": ""}); err == nil {
		t.Error("confirmation rendered without its link")
	}
	if _, err := Render("welcome", "en", map[string]any{}); err == nil {
		t.Error("unknown kind rendered")
	}
}

func TestHTMLEscapesValues(t *testing.T) {
	t.Parallel()
	v := sampleValues(KindPaymentFailed)
	v["Reason"] = `<script>alert(1)</script>`
	r, err := Render(KindPaymentFailed, "en", v)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(r.HTML, "<script>") || !strings.Contains(r.HTML, "&lt;script&gt;") {
		t.Fatalf("html does not escape values:\n%s", r.HTML)
	}
	v = sampleValues(KindConfirmEmail)
	v["ConfirmURL"] = "javascript:alert(1)"
	if r, err = Render(KindConfirmEmail, "en", v); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(r.HTML, `href="javascript:`) {
		t.Fatalf("html keeps a javascript: link:\n%s", r.HTML)
	}
}

// Every template file belongs to a known locale and kind, so a typo in a
// file name cannot leave a template silently unused.
func TestTemplateFilesAreAllUsed(t *testing.T) {
	t.Parallel()
	known := map[string]bool{}
	for _, l := range Locales {
		known["templates/"+l+"/layout.html.tmpl"] = true
		for _, k := range Kinds {
			for _, part := range []string{"subject", "txt", "html"} {
				known["templates/"+l+"/"+string(k)+"."+part+".tmpl"] = true
			}
		}
	}
	err := fs.WalkDir(templateFS, "templates", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if !known[path] {
			t.Errorf("template file %s matches no locale and kind", path)
		}
		delete(known, path)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for path := range known {
		t.Errorf("template file %s is missing", path)
	}
}

func TestLocale(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"ru": "ru", "ru-RU": "ru", "RU_ru": "ru", " ru ": "ru", "en": "en", "en-GB": "en", "": "en", "de": "en", "uk-UA": "en",
	} {
		if got := Locale(in); got != want {
			t.Errorf("Locale(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFormatting(t *testing.T) {
	t.Parallel()
	d := time.Date(2027, 3, 1, 7, 5, 0, 0, time.FixedZone("MSK", 3*3600))
	for _, c := range []struct{ got, want string }{
		{formatDate("en", &d), "1 March 2027"},
		{formatDate("ru", &d), "1 марта 2027 г."},
		{formatDateTime("en", &d), "1 March 2027, 04:05 UTC"},
		{formatDate("en", nil), ""},
		{formatDate("ru", &time.Time{}), ""},
		{formatMoney("en", 29900, "RUB"), "RUB 299.00"},
		{formatMoney("ru", 29900, "RUB"), "299,00\u00a0₽"},
		{formatMoney("ru", 123456789, "rub"), "1\u00a0234\u00a0567,89\u00a0₽"},
		{formatMoney("en", 100000, "USD"), "USD 1,000.00"},
		{formatMoney("ru", 5, "EUR"), "0,05\u00a0EUR"},
		{formatMoney("en", -1050, "RUB"), "RUB -10.50"},
		{formatMoney("en", 0, ""), ""},
		{formatPlan("ru", "annual"), "Премиум на год"},
		{formatPlan("en", "family"), "family"},
		{formatPlan("en", ""), "Premium"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}
