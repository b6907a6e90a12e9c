"""The natural-language queries of the MRC nested recognizer, one per entity type.

CMeEE: the paper's style (MRC-MTL-MS, CCL 2022, Table 5): "find X in the
text, for example a, b, c". The dis, bod and sym queries are the paper's;
the other six follow the same pattern with typical members of each type
from the CMeEE guidelines. CCKS2019 and GENIA queries are written here in
the same style. A config can name a preset (`medlink.mrc_queries.v1`) or
give its own label -> query table.
"""
from typing import Dict

from spacy.util import registry

QUERIES: Dict[str, Dict[str, str]] = {
    "cmeee": {
        "dis": "在文本中找出疾病，例如癌症、病变、炎症、增生、肿瘤",
        "sym": "在文本中找出临床表现，例如疼痛、痉挛、异常",
        "bod": "在文本中找出身体部位，例如细胞、皮肤、抗体",
        "dru": "在文本中找出药物，例如胶囊、激素、维生素、抗生素",
        "equ": "在文本中找出医疗设备，例如仪器、器械、支架、导管",
        "pro": "在文本中找出医疗程序，例如手术、检查、治疗、穿刺",
        "ite": "在文本中找出医学检验项目，例如血常规、血糖、抗体滴度、指数",
        "mic": "在文本中找出微生物类，例如细菌、病毒、真菌、寄生虫",
        "dep": "在文本中找出科室，例如内科、外科、儿科、急诊科",
    },
    "ccks2019": {
        "解剖部位": "在文本中找出解剖部位，例如腹部、肝脏、胃、淋巴结",
        "疾病和诊断": "在文本中找出疾病和诊断，例如癌、炎症、高血压、肿瘤",
        "药物": "在文本中找出药物，例如奥沙利铂、替吉奥、胰岛素",
        "实验室检验": "在文本中找出实验室检验，例如白细胞、血红蛋白、癌胚抗原",
        "影像检查": "在文本中找出影像检查，例如CT、B超、磁共振、胸片",
        "手术": "在文本中找出手术，例如根治术、切除术、穿刺术",
    },
    "genia": {
        "protein": "Find proteins in the text, for example IL-2, NF-kappa B, cytokines, receptors, transcription factors",
        "DNA": "Find DNA in the text, for example genes, promoters, enhancers, binding sites, cDNA",
        "RNA": "Find RNA in the text, for example mRNA, transcripts, messenger RNA",
        "cell_line": "Find cell lines in the text, for example Jurkat cells, HeLa cells, U937, T cell lines",
        "cell_type": "Find cell types in the text, for example T cells, monocytes, lymphocytes, B cells",
    },
}


@registry.misc("medlink.mrc_queries.v1")
def mrc_queries(corpus: str) -> Dict[str, str]:
    """The label -> query table of a corpus: "cmeee", "ccks2019" or "genia"."""
    if corpus not in QUERIES:
        raise ValueError(f"no MRC queries for {corpus!r}; known: {sorted(QUERIES)}")
    return dict(QUERIES[corpus])
