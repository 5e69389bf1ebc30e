//! A profile as lint reads it: the typed profile for what it says, and its serde mirror for
//! where it says it (each flow, option and domain with its line and column). A profile that
//! came from elsewhere (a MUD file) has no mirror; its findings point at the file alone.

use portolan_model::raw::{RawEndpoint, RawFlow, RawProfile, Spanned};
use portolan_model::{Diagnostic, Pos, Profile};

use crate::finding::Location;

/// One profile and where its parts are.
pub struct ProfileDoc {
    pub file: String,
    pub profile: Profile,
    raw: Option<RawProfile>,
}

impl ProfileDoc {
    /// Validates a profile's text and keeps its mirror for positions.
    pub fn from_text(file: &str, text: &str) -> Result<ProfileDoc, Vec<Diagnostic>> {
        let loaded = portolan_model::validate::profile_text(file, text)?;
        // The same text parsed again for positions; it parsed once already, so this cannot
        // fail, and if it did the findings would only lose their lines.
        let raw: Option<RawProfile> = serde_saphyr::from_str(text).ok();
        let raw = raw.filter(|r| {
            r.flows.len() == loaded.value.flows.len()
                && r.flows
                    .iter()
                    .zip(&loaded.value.flows)
                    .all(|(a, b)| a.id.value == b.id)
        });
        Ok(ProfileDoc {
            file: file.to_string(),
            profile: loaded.value,
            raw,
        })
    }

    /// A profile without its text (a MUD file): findings point at `file` only.
    pub fn without_source(file: &str, profile: Profile) -> ProfileDoc {
        ProfileDoc {
            file: file.to_string(),
            profile,
            raw: None,
        }
    }

    pub fn at(&self, p: Pos) -> Location {
        Location {
            file: self.file.clone(),
            line: p.line,
            column: p.column,
        }
    }

    pub fn at_span<T>(&self, s: &Spanned<T>) -> Location {
        self.at(Pos::from(s.referenced))
    }

    /// The file alone, for what has no position.
    pub fn whole(&self) -> Location {
        self.at(Pos::UNKNOWN)
    }

    /// The mirror of the flow at `index` of the typed profile.
    pub fn raw_flow(&self, index: usize) -> Option<&RawFlow> {
        self.raw.as_ref().and_then(|r| r.flows.get(index))
    }

    /// Where the flow at `index` is declared (its `id:`).
    pub fn flow_at(&self, index: usize) -> Location {
        self.raw_flow(index)
            .map_or_else(|| self.whole(), |f| self.at_span(&f.id))
    }

    pub fn raw_endpoint(&self, id: &str) -> Option<&RawEndpoint> {
        self.raw
            .as_ref()
            .and_then(|r| r.endpoints.iter().find(|e| e.id.value == id))
    }

    /// The index of the flow `id` that applies in `mode`.
    pub fn flow_index(&self, id: &str, mode: Option<&str>) -> Option<usize> {
        self.profile
            .flows
            .iter()
            .position(|f| f.id == id && f.in_mode(mode))
    }
}
