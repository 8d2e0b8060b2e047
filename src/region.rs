//! The DashScope regions and what the documentation says of each. A leaf: the error module
//! names a region (a credential refused where the temporary storage is not documented), and the
//! configuration reads one (`FromStr` lives there, with the configuration's error).

use std::fmt;

/// A DashScope region. API keys work only in their own region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Region {
    /// China (Beijing), `https://dashscope.aliyuncs.com`. The temporary storage is documented here.
    #[default]
    Beijing,
    /// Singapore, `https://dashscope-intl.aliyuncs.com`.
    Singapore,
    /// US, `https://dashscope-us.aliyuncs.com`.
    Us,
    /// China (Hong Kong), `https://cn-hongkong.dashscope.aliyuncs.com`.
    HongKong,
    /// Germany (Frankfurt), `eu-central-1`: reached only through a workspace domain
    /// ([`Config::workspace`](crate::Config::workspace)).
    Frankfurt,
    /// Japan (Tokyo), `ap-northeast-1`: reached only through a workspace domain.
    Tokyo,
}

impl Region {
    /// Every region, in documentation order.
    pub const ALL: [Region; 6] = [
        Region::Beijing,
        Region::Singapore,
        Region::Us,
        Region::HongKong,
        Region::Frankfurt,
        Region::Tokyo,
    ];

    /// The region's own host, without a path; `None` for the regions reached only through a
    /// workspace domain (Frankfurt, Tokyo).
    pub fn base_url(self) -> Option<&'static str> {
        match self {
            Region::Beijing => Some("https://dashscope.aliyuncs.com"),
            Region::Singapore => Some("https://dashscope-intl.aliyuncs.com"),
            Region::Us => Some("https://dashscope-us.aliyuncs.com"),
            Region::HongKong => Some("https://cn-hongkong.dashscope.aliyuncs.com"),
            Region::Frankfurt | Region::Tokyo => None,
        }
    }

    /// Alibaba Cloud's id of the region (`cn-beijing`, `eu-central-1`, …).
    pub fn id(self) -> &'static str {
        match self {
            Region::Beijing => "cn-beijing",
            Region::Singapore => "ap-southeast-1",
            Region::Us => "us-east-1",
            Region::HongKong => "cn-hongkong",
            Region::Frankfurt => "eu-central-1",
            Region::Tokyo => "ap-northeast-1",
        }
    }

    /// The workspace domain of `workspace` in this region,
    /// `https://{workspace}.{region id}.maas.aliyuncs.com`, as the official SDK builds it for the
    /// "MaaS" regions; `None` for Beijing, which the SDK reaches by its own host only.
    pub fn workspace_base_url(self, workspace: &str) -> Option<String> {
        (self != Region::Beijing)
            .then(|| format!("https://{workspace}.{}.maas.aliyuncs.com", self.id()))
    }

    /// Whether the temporary storage is documented in this region: the storage page names China
    /// (Beijing), a newer translation of it Singapore too (`../shared/reference/live-service.md`,
    /// "Regions"). Elsewhere a refused credential request says so
    /// ([`Error::StorageNotInRegion`](crate::Error::StorageNotInRegion)).
    pub fn has_temporary_storage(self) -> bool {
        matches!(self, Region::Beijing | Region::Singapore)
    }

    /// The short name accepted by [`FromStr`](std::str::FromStr).
    pub fn name(self) -> &'static str {
        match self {
            Region::Beijing => "beijing",
            Region::Singapore => "singapore",
            Region::Us => "us",
            Region::HongKong => "hongkong",
            Region::Frankfurt => "frankfurt",
            Region::Tokyo => "tokyo",
        }
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
