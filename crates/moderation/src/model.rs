//! What moderation is about and what it decides: subjects, categories, grounds, actions,
//! notices, decisions and appeals, as the log records them.

use serde::{Deserialize, Serialize};

/// What a notice or a decision is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Subject {
    /// Which kind of thing.
    pub kind: SubjectKind,
    /// Its id (a post's or clip's number, an account's handle or id, a Space's id).
    pub id: String,
    /// For a Space: the moment in its recording, milliseconds from its start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_ms: Option<u64>,
}

/// The kinds of things that can be reported and restricted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    /// A post (text).
    Post,
    /// An account.
    Account,
    /// A Space (live or recorded audio).
    Space,
    /// A clip of a Space (audio).
    Clip,
}

macro_rules! named {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $wire:literal / $tdb:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name in stentor's API.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire),+
                }
            }

            /// The Transparency Database's constant.
            pub fn tdb(self) -> &'static str {
                match self {
                    $($name::$variant => $tdb),+
                }
            }

            /// The value named `s` in stentor's API.
            pub fn parse(s: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s)
            }
        }
    };
}

named! {
    /// The categories of the Transparency Database (`STATEMENT_CATEGORY_*`).
    Category {
        /// Animal welfare.
        AnimalWelfare = "animal_welfare" / "STATEMENT_CATEGORY_ANIMAL_WELFARE",
        /// Consumer information infringements.
        ConsumerInformation = "consumer_information" / "STATEMENT_CATEGORY_CONSUMER_INFORMATION",
        /// Cyber violence.
        CyberViolence = "cyber_violence" / "STATEMENT_CATEGORY_CYBER_VIOLENCE",
        /// Cyber violence against women.
        CyberViolenceAgainstWomen = "cyber_violence_against_women" / "STATEMENT_CATEGORY_CYBER_VIOLENCE_AGAINST_WOMEN",
        /// Data protection and privacy violations.
        DataProtection = "data_protection_and_privacy_violations" / "STATEMENT_CATEGORY_DATA_PROTECTION_AND_PRIVACY_VIOLATIONS",
        /// Illegal or harmful speech.
        IllegalOrHarmfulSpeech = "illegal_or_harmful_speech" / "STATEMENT_CATEGORY_ILLEGAL_OR_HARMFUL_SPEECH",
        /// Intellectual property infringements.
        IntellectualProperty = "intellectual_property_infringements" / "STATEMENT_CATEGORY_INTELLECTUAL_PROPERTY_INFRINGEMENTS",
        /// Negative effects on civic discourse or elections.
        CivicDiscourse = "negative_effects_on_civic_discourse_or_elections" / "STATEMENT_CATEGORY_NEGATIVE_EFFECTS_ON_CIVIC_DISCOURSE_OR_ELECTIONS",
        /// The notifier did not say which kind of illegal content.
        NotSpecifiedNotice = "not_specified_notice" / "STATEMENT_CATEGORY_NOT_SPECIFIED_NOTICE",
        /// Another violation of the terms.
        OtherViolationTerms = "other_violation_tc" / "STATEMENT_CATEGORY_OTHER_VIOLATION_TC",
        /// Protection of minors.
        ProtectionOfMinors = "protection_of_minors" / "STATEMENT_CATEGORY_PROTECTION_OF_MINORS",
        /// Risk for public security.
        PublicSecurity = "risk_for_public_security" / "STATEMENT_CATEGORY_RISK_FOR_PUBLIC_SECURITY",
        /// Scams and fraud.
        ScamsAndFraud = "scams_and_fraud" / "STATEMENT_CATEGORY_SCAMS_AND_FRAUD",
        /// Self-harm.
        SelfHarm = "self_harm" / "STATEMENT_CATEGORY_SELF_HARM",
        /// Unsafe and prohibited products.
        UnsafeProducts = "unsafe_and_prohibited_products" / "STATEMENT_CATEGORY_UNSAFE_AND_PROHIBITED_PRODUCTS",
        /// Violence.
        Violence = "violence" / "STATEMENT_CATEGORY_VIOLENCE",
    }
}

named! {
    /// Why content is restricted: the law, or the terms of service.
    Ground {
        /// Illegal content (Art. 17(3)(d)).
        Illegal = "illegal" / "DECISION_GROUND_ILLEGAL_CONTENT",
        /// Content incompatible with the terms (Art. 17(3)(e)).
        Incompatible = "incompatible" / "DECISION_GROUND_INCOMPATIBLE_CONTENT",
    }
}

named! {
    /// What a moderator can do.
    Action {
        /// A label with its reason, shown on the content.
        Label = "label" / "DECISION_VISIBILITY_CONTENT_LABELLED",
        /// Kept out of discovery and of non-followers' timelines.
        Demote = "demote" / "DECISION_VISIBILITY_CONTENT_DEMOTED",
        /// No replies, reposts or likes.
        RestrictInteraction = "restrict_interaction" / "DECISION_VISIBILITY_CONTENT_INTERACTION_RESTRICTED",
        /// Removed.
        Remove = "remove" / "DECISION_VISIBILITY_CONTENT_REMOVED",
        /// A live Space ended (access to the broadcast disabled).
        EndSpace = "end_space" / "DECISION_VISIBILITY_CONTENT_DISABLED",
        /// A speaker muted in a live Space.
        MuteSpeaker = "mute_speaker" / "DECISION_VISIBILITY_OTHER",
        /// A speaker removed from a live Space (the service partly suspended for them).
        RemoveSpeaker = "remove_speaker" / "DECISION_PROVISION_PARTIAL_SUSPENSION",
        /// The account suspended.
        SuspendAccount = "suspend_account" / "DECISION_ACCOUNT_SUSPENDED",
    }
}

impl Action {
    /// What the restriction is, in words for the person affected.
    pub fn describe(self) -> &'static str {
        match self {
            Action::Label => "A label with the reason below is shown on this content.",
            Action::Demote => {
                "This content is kept out of discovery (the lists of Spaces, the replies shown to \
                 people who do not follow you); your followers still see it."
            }
            Action::RestrictInteraction => {
                "Nobody can reply to, repost or like this content; it stays visible."
            }
            Action::Remove => "This content was removed.",
            Action::EndSpace => "This live Space was ended, and its recording is not played.",
            Action::MuteSpeaker => {
                "You were muted as a speaker in this live Space, for as long as it lasts: you \
                 cannot unmute yourself."
            }
            Action::RemoveSpeaker => {
                "You were removed from this live Space and cannot join it again."
            }
            Action::SuspendAccount => {
                "Your account is suspended: you cannot post, speak, host or interact."
            }
        }
    }

    /// The subjects this action applies to.
    pub fn applies_to(self, kind: SubjectKind) -> bool {
        use SubjectKind::*;
        match self {
            Action::Label | Action::Remove => kind != Account,
            // Posts and Spaces are what discovery shows.
            Action::Demote => matches!(kind, Post | Space),
            Action::RestrictInteraction => kind == Post,
            Action::EndSpace => kind == Space,
            Action::MuteSpeaker | Action::RemoveSpeaker => kind == Space,
            Action::SuspendAccount => kind == Account,
        }
    }
}

/// How far automation took part (Art. 17(3)(c)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Automation {
    /// A person decided.
    #[default]
    NotAutomated,
    /// A person decided with automated help.
    Partially,
    /// No person decided.
    Fully,
}

impl Automation {
    /// The Transparency Database's constant.
    pub fn tdb(self) -> &'static str {
        match self {
            Automation::NotAutomated => "AUTOMATED_DECISION_NOT_AUTOMATED",
            Automation::Partially => "AUTOMATED_DECISION_PARTIALLY",
            Automation::Fully => "AUTOMATED_DECISION_FULLY",
        }
    }
}

/// A notice (Art. 16): someone reports a subject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    /// What is reported.
    pub subject: Subject,
    /// The category the notifier chose.
    pub category: Category,
    /// Why the notifier thinks it breaks the law or the terms.
    pub explanation: String,
    /// The notifier's account, if signed in (kept out of every export).
    #[serde(default)]
    pub notifier: Option<u64>,
    /// The notifier's name and email as given (kept out of every export).
    #[serde(default)]
    pub contact: Option<String>,
    /// The notifier is a trusted flagger (their notices come first).
    #[serde(default)]
    pub trusted: bool,
}

/// A moderator's decision on a subject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// What is restricted.
    pub subject: Subject,
    /// The account affected (the author, the host, the speaker, the account itself).
    pub affected: u64,
    /// What is done.
    pub action: Action,
    /// The category.
    pub category: Category,
    /// The law or the terms.
    pub ground: Ground,
    /// The legal ground (illegal) or the contractual ground (incompatible) relied on.
    pub ground_reference: String,
    /// Why the content is illegal or incompatible on that ground.
    pub explanation: String,
    /// The facts and circumstances relied on.
    pub facts: String,
    /// Where the restriction applies: EU/EEA country codes; empty means everywhere.
    #[serde(default)]
    pub territorial_scope: Vec<String>,
    /// When the restriction ends (Unix ms); none: until reversed.
    #[serde(default)]
    pub ends_at_ms: Option<i64>,
    /// The notice it answers, if any (its log sequence number).
    #[serde(default)]
    pub notice: Option<u64>,
    /// Whether that notice came from a trusted flagger.
    #[serde(default)]
    pub trusted_notice: bool,
    /// Whether the content was found by automated means.
    #[serde(default)]
    pub automated_detection: bool,
    /// Whether the decision was automated.
    #[serde(default)]
    pub automated_decision: Automation,
    /// When the content was posted (Unix ms).
    pub content_at_ms: i64,
    /// The moderator who decided (kept out of every export).
    pub moderator: u64,
}

/// An appeal (an internal complaint, Art. 20) against a decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Appeal {
    /// The decision appealed (its log sequence number).
    pub decision: u64,
    /// The account that appeals.
    pub by: u64,
    /// Why the decision is wrong.
    pub text: String,
}

/// How an appeal ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The decision stands.
    Upheld,
    /// The decision was wrong: undone.
    Reversed,
}

/// A moderator's answer to an appeal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppealAnswer {
    /// The appeal answered (its log sequence number).
    pub appeal: u64,
    /// The decision it was about.
    pub decision: u64,
    /// Upheld or reversed.
    pub outcome: Outcome,
    /// The reasons, for the person who appealed.
    pub explanation: String,
    /// The moderator who answered (never the one who decided; kept out of every export).
    pub moderator: u64,
}

/// The EU and EEA countries the Transparency Database knows.
pub const EUROPEAN_COUNTRIES: &[&str] = &[
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IS",
    "IT", "LI", "LT", "LU", "LV", "MT", "NL", "NO", "PL", "PT", "RO", "SE", "SI", "SK",
];
