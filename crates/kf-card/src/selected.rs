//! The applications of the fob's registry, as selected on the basic logical
//! channel (GPC 2.3.1 §6.4.2).

/// Which application is selected on the basic logical channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Selected {
    /// The Issuer Security Domain (implicitly selected after power-on, GPC §6.4.2.1.1).
    Isd,
    /// The key-fob applet.
    Applet,
}

impl Selected {
    /// The application's full AID.
    pub(crate) fn aid(self) -> &'static [u8] {
        match self {
            Selected::Isd => kf_profile::ISD_AID,
            Selected::Applet => kf_profile::APPLET_AID,
        }
    }

    /// The name under which the state file keeps its security domain's data.
    pub(crate) fn state_name(self) -> &'static str {
        match self {
            Selected::Isd => "isd",
            Selected::Applet => "applet",
        }
    }
}
