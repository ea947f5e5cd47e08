"""Market candles of a campaign × crypto partition, as Parquet in the same object store.

Stored next to the blobs (``{prefix}/{campaign}/{crypto}/_candles.parquet``) so a campaign's
inputs and outputs share one run-isolated prefix and one retention rule.
"""


import io

import dagster as dg
import pandas as pd
from pydantic import Field

from cvn_assets.contracts.keys import campaign_prefix
from cvn_assets.contracts.identifiers import validate_crypto
from cvn_assets.partitions import partition_identity
from cvn_assets.storage.resources import ObjectStoreResource


def candles_key(prefix: str, campaign_id: str, crypto: str) -> str:
    return f"{campaign_prefix(prefix, campaign_id)}{validate_crypto(crypto)}/_candles.parquet"


class CandlesIOManager(dg.ConfigurableIOManager):
    """Persists OHLCV candles of one acquisition partition as Parquet (never pickle)."""

    object_store: dg.ResourceDependency[ObjectStoreResource]
    compression: str = Field(default="zstd", description="Parquet compression codec")

    def _key(self, partition_key: str | dg.MultiPartitionKey) -> str:
        campaign_id, crypto = partition_identity(partition_key)
        return candles_key(self.object_store.prefix, campaign_id, crypto)

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame) -> None:
        buffer = io.BytesIO()
        obj.to_parquet(buffer, index=False, compression=self.compression)
        info = self.object_store.store().put(self._key(context.asset_partition_key), buffer.getvalue(),
                                             content_type="application/vnd.apache.parquet")
        context.add_output_metadata({"uri": dg.MetadataValue.path(info.uri), "bytes": info.size,
                                     "sha256": info.sha256, "rows": len(obj)})

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        data = self.object_store.store().get(self._key(context.asset_partition_key))
        return pd.read_parquet(io.BytesIO(data))
