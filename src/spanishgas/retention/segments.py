"""Customer segments: k-means on value and behaviour features of the latest snapshot, with the number of
segments chosen by silhouette and a readable name for each from its centroid."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

# What the retention team segments on: value, usage, price position, tenure, contacts, renewal timing.
SEGMENT_FEATURES = (
    "margin_avg_12m",
    "revenue_avg_12m",
    "elec_kwh_avg_12m",
    "gas_share_12m",
    "is_dual_fuel",
    "price_vs_segment_last",
    "tenure_months",
    "contacts_365d",
    "complaints_365d",
    "months_to_renewal",
)
# Centroid z-score above which a trait names a segment, with the words for high and low values.
TRAITS: dict[str, tuple[str, str]] = {
    "margin_avg_12m": ("high-margin", "low-margin"),
    "elec_kwh_avg_12m": ("heavy users", "light users"),
    "gas_share_12m": ("gas-heavy", "electricity-only"),
    "is_dual_fuel": ("dual-fuel", "single-fuel"),
    "price_vs_segment_last": ("price-sensitive (above-market price)", "keenly priced"),
    "tenure_months": ("long-standing", "new"),
    "contacts_365d": ("frequent callers", "silent"),
    "complaints_365d": ("complainers", "no complaints"),
    "months_to_renewal": ("far from renewal", "near renewal"),
}
NAME_THRESHOLD = 0.5


@dataclass
class SegmentModel:
    """Fitted scaler and k-means, with each segment's name, archetype and profile."""

    features: list[str]
    medians: dict[str, float]
    scaler: Any
    kmeans: Any
    names: dict[int, str]
    archetypes: dict[int, str]
    profiles: pd.DataFrame
    silhouettes: dict[int, float] = field(default_factory=dict)

    def assign(self, frame: pd.DataFrame) -> np.ndarray:
        """Segment id of each customer."""
        return self.assign_matrix(frame[self.features].to_numpy(dtype="float64", na_value=np.nan))

    def assign_matrix(self, x: np.ndarray) -> np.ndarray:
        """Segment id of each row of a matrix of :attr:`features` (missing values: the fitted medians).

        The nearest centroid after scaling, as ``KMeans.predict`` computes it, in plain numpy so one
        customer costs microseconds (the API assigns one at a time)."""
        medians = np.array([self.medians[f] for f in self.features])
        filled = np.where(np.isnan(x), medians, x)
        z = (filled - self.scaler.mean_) / self.scaler.scale_
        distances = ((z[:, None, :] - self.kmeans.cluster_centers_[None, :, :]) ** 2).sum(axis=2)
        return distances.argmin(axis=1).astype(np.int32)


def fit_segments(frame: pd.DataFrame, seed: int, k_range: range = range(3, 9), sample: int = 5000) -> SegmentModel:
    """Fit k-means for each k in ``k_range`` and keep the one with the best silhouette on a sample.

    Segment ids are ordered by centroid margin (0 = lowest), so reruns on the same data and seed give the
    same ids and names."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score
    from sklearn.preprocessing import StandardScaler

    features = [f for f in SEGMENT_FEATURES if f in frame.columns]
    medians = frame[features].astype(float).median().fillna(0.0).to_dict()
    x_raw = frame[features].astype(float).fillna(medians).to_numpy()
    scaler = StandardScaler().fit(x_raw)
    x = scaler.transform(x_raw)
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(x), size=min(sample, len(x)), replace=False)
    best, silhouettes = None, {}
    for k in k_range:
        if k >= len(x):
            break
        model = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(x)
        silhouettes[k] = float(silhouette_score(x[pick], model.labels_[pick]))
        if best is None or silhouettes[k] > silhouettes[best[0]]:
            best = (k, model)
    if best is None:
        raise ValueError("too few customers to segment")
    k, kmeans = best
    # Order segments by centroid margin so ids are stable.
    margin_col = features.index("margin_avg_12m") if "margin_avg_12m" in features else 0
    order = np.argsort(kmeans.cluster_centers_[:, margin_col], kind="stable")
    kmeans.cluster_centers_ = kmeans.cluster_centers_[order]
    labels = kmeans.predict(x)
    centroids = pd.DataFrame(kmeans.cluster_centers_, columns=features)
    profiles = frame[features].assign(segment_id=labels).groupby("segment_id").mean()
    profiles["customers"] = pd.Series(labels).value_counts().sort_index()
    names, archetypes = {}, {}
    for seg in range(k):
        z = centroids.loc[seg]
        traits = sorted(((abs(z[f]), f) for f in TRAITS if f in z and abs(z[f]) >= NAME_THRESHOLD), reverse=True)
        words = [TRAITS[f][0] if z[f] > 0 else TRAITS[f][1] for _, f in traits[:3]]
        names[seg] = ", ".join(words) if words else "typical customers"
        price_z = z.get("price_vs_segment_last", 0.0)
        archetypes[seg] = "price_sensitive" if price_z >= NAME_THRESHOLD else "default"
    profiles["name"] = pd.Series(names)
    return SegmentModel(features, medians, scaler, kmeans, names, archetypes, profiles, silhouettes)
