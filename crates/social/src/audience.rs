//! Who may subscribe to an account's live alerts: the account's own choice.

use serde::{Deserialize, Serialize};

/// Who may subscribe to an account's live alerts (and so be told when it goes live).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// Anyone who follows the account.
    #[default]
    Followers,
    /// Only those the account follows back.
    Mutuals,
    /// Nobody: the account sends no live alerts.
    Nobody,
}

impl Audience {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Audience::Followers => "followers",
            Audience::Mutuals => "mutuals",
            Audience::Nobody => "nobody",
        }
    }

    /// From the stored name; anything unknown is the most private choice.
    pub fn parse(s: &str) -> Self {
        match s {
            "followers" => Audience::Followers,
            "mutuals" => Audience::Mutuals,
            _ => Audience::Nobody,
        }
    }

    /// Whether someone who follows the account (`follows`) and whom the account follows
    /// (`followed_back`) may have its live alerts.
    pub fn admits(self, follows: bool, followed_back: bool) -> bool {
        match self {
            Audience::Followers => follows,
            Audience::Mutuals => follows && followed_back,
            Audience::Nobody => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_choice_admits_whom_it_says() {
        use Audience::*;
        let cases = [
            (
                Followers,
                [
                    (false, false, false),
                    (true, false, true),
                    (true, true, true),
                ],
            ),
            (
                Mutuals,
                [
                    (false, false, false),
                    (true, false, false),
                    (true, true, true),
                ],
            ),
            (
                Nobody,
                [
                    (false, false, false),
                    (true, false, false),
                    (true, true, false),
                ],
            ),
        ];
        for (audience, rows) in cases {
            for (follows, back, admitted) in rows {
                assert_eq!(audience.admits(follows, back), admitted, "{audience:?}");
            }
            assert_eq!(Audience::parse(audience.as_str()), audience);
        }
        assert_eq!(Audience::parse("garbage"), Nobody);
    }
}
