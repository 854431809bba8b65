//! The reset page's sentences in English, German and French, chosen like the mail's
//! language: from `Accept-Language`, English when nothing else fits. Any of them can be
//! replaced by a file `page[.<locale>].<key>` in the templates directory (`web.templates_dir`,
//! or `mail.templates_dir` when that is empty), named as the mail's templates are.

/// Every sentence of the page in one language. `{email}`, `{ttl}`, `{min}` and `{wait}` are filled in
/// when the page is rendered (escaped).
#[derive(Clone)]
pub struct Texts {
    pub lang: &'static str,
    /// Its place among the [`LANGUAGES`] built in.
    pub index: usize,
    pub title: &'static str,
    pub intro: &'static str,
    pub email_label: &'static str,
    pub send_code: &'static str,
    pub code_sent: &'static str,
    pub code_label: &'static str,
    pub confirm: &'static str,
    pub password_label: &'static str,
    pub password_hint: &'static str,
    pub password2_label: &'static str,
    pub set_password: &'static str,
    pub done: &'static str,
    pub start_over: &'static str,
    pub no_account: &'static str,
    pub bad_email: &'static str,
    pub invalid_code: &'static str,
    pub mismatch: &'static str,
    pub too_many: &'static str,
    pub busy: &'static str,
    pub expired_flow: &'static str,
    pub refused: &'static str,
    pub unexpected: &'static str,
    pub too_short: &'static str,
    pub too_long: &'static str,
    pub too_common: &'static str,
    pub guessable: &'static str,
    pub breached: &'static str,
    pub has_email: &'static str,
    pub seconds: (&'static str, &'static str),
    pub minutes: (&'static str, &'static str),
}

/// How many languages are built in.
pub const LANGUAGES: usize = 3;

const EN: Texts = Texts {
    lang: "en",
    index: 0,
    title: "Reset your password",
    intro: "Enter the email address of your account. We will send a code to it.",
    email_label: "Email address",
    send_code: "Send code",
    code_sent: "If {email} has an account, a code is on its way. It is valid for {ttl}.",
    code_label: "Code from the email",
    confirm: "Confirm code",
    password_label: "New password",
    password_hint: "At least {min} characters. A few unrelated words make a good one.",
    password2_label: "New password, again",
    set_password: "Set password",
    done: "Your password was changed. You can now sign in with it.",
    start_over: "Start over",
    no_account: "No account was found with this email address.",
    bad_email: "Enter a valid email address.",
    invalid_code:
        "This code is wrong or has expired. Check the latest email, or ask for a new code.",
    mismatch: "The two passwords do not match.",
    too_many: "Too many attempts. Try again in {wait}.",
    busy: "The service is busy. Try again in {wait}.",
    expired_flow: "This reset is no longer valid. Please start over.",
    refused: "This request was refused.",
    unexpected: "Something went wrong on our side. Please try again later.",
    too_short: "The password must be at least {n} characters long.",
    too_long: "The password must be at most {n} characters long.",
    too_common: "This password is too common. Choose a less predictable one.",
    guessable: "This password is too easy to guess. Add a few unrelated words.",
    breached: "This password has appeared in a data breach. Choose one you have not used before.",
    has_email: "The password must not contain your email address.",
    seconds: ("second", "seconds"),
    minutes: ("minute", "minutes"),
};

const DE: Texts = Texts {
    lang: "de",
    index: 1,
    title: "Passwort zurücksetzen",
    intro: "Geben Sie die E-Mail-Adresse Ihres Kontos ein. Wir senden einen Code dorthin.",
    email_label: "E-Mail-Adresse",
    send_code: "Code senden",
    code_sent: "Wenn zu {email} ein Konto besteht, ist ein Code unterwegs. Er ist {ttl} gültig.",
    code_label: "Code aus der E-Mail",
    confirm: "Code bestätigen",
    password_label: "Neues Passwort",
    password_hint: "Mindestens {min} Zeichen. Einige zusammenhanglose Wörter ergeben ein gutes.",
    password2_label: "Neues Passwort wiederholen",
    set_password: "Passwort setzen",
    done: "Ihr Passwort wurde geändert. Sie können sich jetzt damit anmelden.",
    start_over: "Von vorn beginnen",
    no_account: "Zu dieser E-Mail-Adresse wurde kein Konto gefunden.",
    bad_email: "Geben Sie eine gültige E-Mail-Adresse ein.",
    invalid_code: "Dieser Code ist falsch oder abgelaufen. Prüfen Sie die neueste E-Mail oder fordern Sie einen neuen Code an.",
    mismatch: "Die beiden Passwörter stimmen nicht überein.",
    too_many: "Zu viele Versuche. Versuchen Sie es in {wait} erneut.",
    busy: "Der Dienst ist ausgelastet. Versuchen Sie es in {wait} erneut.",
    expired_flow: "Dieses Zurücksetzen ist nicht mehr gültig. Bitte beginnen Sie von vorn.",
    refused: "Diese Anfrage wurde abgelehnt.",
    unexpected: "Bei uns ist ein Fehler aufgetreten. Bitte versuchen Sie es später erneut.",
    too_short: "Das Passwort muss mindestens {n} Zeichen lang sein.",
    too_long: "Das Passwort darf höchstens {n} Zeichen lang sein.",
    too_common: "Dieses Passwort ist zu verbreitet. Wählen Sie ein weniger vorhersehbares.",
    guessable: "Dieses Passwort ist zu leicht zu erraten. Fügen Sie ein paar unabhängige Wörter hinzu.",
    breached: "Dieses Passwort ist bei einem Datenleck bekannt geworden. Wählen Sie eines, das Sie noch nicht verwendet haben.",
    has_email: "Das Passwort darf Ihre E-Mail-Adresse nicht enthalten.",
    seconds: ("Sekunde", "Sekunden"),
    minutes: ("Minute", "Minuten"),
};

const FR: Texts = Texts {
    lang: "fr",
    index: 2,
    title: "Réinitialiser votre mot de passe",
    intro: "Saisissez l'adresse e-mail de votre compte. Nous y enverrons un code.",
    email_label: "Adresse e-mail",
    send_code: "Envoyer le code",
    code_sent: "Si {email} a un compte, un code est en route. Il est valable {ttl}.",
    code_label: "Code reçu par e-mail",
    confirm: "Confirmer le code",
    password_label: "Nouveau mot de passe",
    password_hint: "Au moins {min} caractères. Quelques mots sans rapport en font un bon.",
    password2_label: "Nouveau mot de passe, à nouveau",
    set_password: "Définir le mot de passe",
    done: "Votre mot de passe a été modifié. Vous pouvez maintenant vous connecter avec.",
    start_over: "Recommencer",
    no_account: "Aucun compte n'a été trouvé pour cette adresse e-mail.",
    bad_email: "Saisissez une adresse e-mail valide.",
    invalid_code:
        "Ce code est faux ou a expiré. Consultez le dernier e-mail, ou demandez un nouveau code.",
    mismatch: "Les deux mots de passe ne correspondent pas.",
    too_many: "Trop de tentatives. Réessayez dans {wait}.",
    busy: "Le service est occupé. Réessayez dans {wait}.",
    expired_flow: "Cette réinitialisation n'est plus valable. Veuillez recommencer.",
    refused: "Cette demande a été refusée.",
    unexpected: "Une erreur s'est produite de notre côté. Veuillez réessayer plus tard.",
    too_short: "Le mot de passe doit compter au moins {n} caractères.",
    too_long: "Le mot de passe doit compter au plus {n} caractères.",
    too_common: "Ce mot de passe est trop courant. Choisissez-en un moins prévisible.",
    guessable: "Ce mot de passe est trop facile à deviner. Ajoutez quelques mots sans rapport.",
    breached: "Ce mot de passe a figuré dans une fuite de données. Choisissez-en un que vous n'avez jamais utilisé.",
    has_email: "Le mot de passe ne doit pas contenir votre adresse e-mail.",
    seconds: ("seconde", "secondes"),
    minutes: ("minute", "minutes"),
};

/// The page's texts in every language it speaks: the built-in ones, with the overrides.
pub struct PageTexts([Texts; LANGUAGES]);

impl PageTexts {
    /// The built-in texts, overlaid with the `page.*` files of `dir` (if not empty).
    pub fn load(dir: &std::path::Path) -> Result<PageTexts, crate::config::ConfigError> {
        let mut texts = PageTexts([EN, DE, FR]);
        if dir.as_os_str().is_empty() {
            return Ok(texts);
        }
        let bad = |e: String| {
            crate::config::ConfigError(format!("the page's texts in {}: {e}", dir.display()))
        };
        for entry in std::fs::read_dir(dir).map_err(|e| bad(e.to_string()))? {
            let path = entry.map_err(|e| bad(e.to_string()))?.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let Some(rest) = name.strip_prefix("page.") else {
                continue;
            };
            let (lang, key) = rest.split_once('.').unwrap_or(("en", rest));
            let text = std::fs::read_to_string(&path).map_err(|e| bad(format!("{name}: {e}")))?;
            let language = texts.0.iter_mut().find(|t| t.lang == lang);
            let language =
                language.ok_or_else(|| bad(format!("{name}: the page speaks en, de and fr")))?;
            // Read once at start-up and kept for the life of the process.
            let text: &'static str = Box::leak(
                text.trim_end_matches(['\r', '\n'])
                    .to_string()
                    .into_boxed_str(),
            );
            if !language.set(key, text) {
                return Err(bad(format!("{name}: no page text is called {key:?}")));
            }
        }
        Ok(texts)
    }

    /// Every language's texts, in the order of their `index`.
    pub fn all(&self) -> &[Texts] {
        &self.0
    }

    /// The texts for the language `Accept-Language` prefers among English, German and French.
    pub fn choose(&self, accept_language: Option<&str>) -> &Texts {
        &self.0[preferred(accept_language)]
    }
}

/// The index of the language `Accept-Language` prefers among the built-in ones (English when
/// none fits).
fn preferred(accept_language: Option<&str>) -> usize {
    let mut best: (f32, usize) = (0.0, 0);
    for item in accept_language.unwrap_or_default().split(',') {
        let mut parts = item.split(';');
        let tag = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let q = parts
            .find_map(|p| p.trim().strip_prefix("q="))
            .and_then(|q| q.parse::<f32>().ok())
            .unwrap_or(1.0);
        let primary = tag.split('-').next().unwrap_or_default();
        let Some(index) = [EN.lang, DE.lang, FR.lang]
            .iter()
            .position(|l| *l == primary)
        else {
            continue;
        };
        if q > best.0 {
            best = (q, index);
        }
    }
    best.1
}

impl Texts {
    /// Replaces the text called `key`; false if there is none.
    fn set(&mut self, key: &str, text: &'static str) -> bool {
        let field = match key {
            "title" => &mut self.title,
            "intro" => &mut self.intro,
            "email_label" => &mut self.email_label,
            "send_code" => &mut self.send_code,
            "code_sent" => &mut self.code_sent,
            "code_label" => &mut self.code_label,
            "confirm" => &mut self.confirm,
            "password_label" => &mut self.password_label,
            "password_hint" => &mut self.password_hint,
            "password2_label" => &mut self.password2_label,
            "set_password" => &mut self.set_password,
            "done" => &mut self.done,
            "start_over" => &mut self.start_over,
            "no_account" => &mut self.no_account,
            "bad_email" => &mut self.bad_email,
            "invalid_code" => &mut self.invalid_code,
            "mismatch" => &mut self.mismatch,
            "too_many" => &mut self.too_many,
            "busy" => &mut self.busy,
            "expired_flow" => &mut self.expired_flow,
            "refused" => &mut self.refused,
            "unexpected" => &mut self.unexpected,
            "too_short" => &mut self.too_short,
            "too_long" => &mut self.too_long,
            "too_common" => &mut self.too_common,
            "guessable" => &mut self.guessable,
            "breached" => &mut self.breached,
            "has_email" => &mut self.has_email,
            _ => return false,
        };
        *field = text;
        true
    }

    /// The sentence for a password the policy refuses.
    pub fn weak(&self, why: crate::recovery::policy::Weak) -> String {
        use crate::recovery::policy::Weak;
        match why {
            Weak::TooShort(n) => self.too_short.replace("{n}", &n.to_string()),
            Weak::TooLong(n) => self.too_long.replace("{n}", &n.to_string()),
            Weak::Common => self.too_common.into(),
            Weak::HasEmail => self.has_email.into(),
            Weak::Guessable(_) => self.guessable.into(),
            Weak::Breached => self.breached.into(),
        }
    }

    /// A wait in words: "45 seconds", "2 minutes" (rounded up).
    pub fn wait(&self, secs: u64) -> String {
        let (n, (one, many)) = if secs < 120 {
            (secs.max(1), self.seconds)
        } else {
            (secs.div_ceil(60), self.minutes)
        };
        format!("{n} {}", if n == 1 { one } else { many })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_preferred_supported_language_wins() {
        let texts = PageTexts::load(std::path::Path::new("")).unwrap();
        assert_eq!(texts.choose(None).lang, "en");
        assert_eq!(texts.choose(Some("de-CH, fr;q=0.8")).lang, "de");
        assert_eq!(texts.choose(Some("it, fr;q=0.5, de;q=0.4")).lang, "fr");
        assert_eq!(texts.choose(Some("it, es;q=0.5")).lang, "en");
    }

    #[test]
    fn each_policy_refusal_has_a_sentence_in_each_language() {
        use crate::recovery::policy::Weak;
        let all = [
            Weak::TooShort(15),
            Weak::TooLong(256),
            Weak::Common,
            Weak::HasEmail,
            Weak::Guessable(None),
            Weak::Breached,
        ];
        for texts in [&EN, &DE, &FR] {
            let said: std::collections::HashSet<String> =
                all.iter().map(|w| texts.weak(*w)).collect();
            assert_eq!(said.len(), 6, "{}: six different sentences", texts.lang);
        }
        assert_eq!(
            DE.weak(Weak::TooLong(256)),
            "Das Passwort darf höchstens 256 Zeichen lang sein."
        );
        assert_eq!(
            EN.weak(Weak::HasEmail),
            "The password must not contain your email address."
        );
    }

    #[test]
    fn waits_are_said_in_words() {
        assert_eq!(EN.wait(1), "1 second");
        assert_eq!(EN.wait(59), "59 seconds");
        assert_eq!(DE.wait(300), "5 Minuten");
        assert_eq!(FR.wait(121), "3 minutes");
    }
}
