"""pt-BR vocabulary of the synthetic warehouse.

Accents are deliberate (João, Conceição, Ângela, Gonçalves...): they exercise
encodings, accent-insensitive search and column widths. The generator gathers
from these lists with random index arrays, so everything stays vectorized.
"""
from __future__ import annotations

import unicodedata

FEMALE_FIRST: list[str] = [
    "Ana", "Maria", "Conceição", "Ângela", "Luíza", "Fátima", "Márcia", "Letícia", "Júlia", "Mônica",
    "Cecília", "Inês", "Lúcia", "Débora", "Vitória", "Bárbara", "Patrícia", "Jéssica", "Gabriela", "Beatriz",
    "Camila", "Fernanda", "Juliana", "Larissa", "Mariana", "Natália", "Priscila", "Renata", "Simone", "Tânia",
    "Valéria", "Yasmin", "Aline", "Bruna", "Carolina", "Daniela", "Elisângela", "Flávia", "Glória", "Heloísa",
    "Isabela", "Joana", "Lívia", "Luana", "Marília", "Nathália", "Rosângela", "Sílvia", "Tatiana", "Vânia",
]
MALE_FIRST: list[str] = [
    "João", "José", "Antônio", "Sérgio", "Fábio", "Márcio", "Cássio", "Vinícius", "Caíque", "Luís",
    "Otávio", "Flávio", "Rogério", "Estêvão", "Simão", "Lucas", "Pedro", "Gabriel", "Rafael", "Thiago",
    "André", "Bruno", "Carlos", "Daniel", "Eduardo", "Felipe", "Gustavo", "Henrique", "Igor", "Júlio",
    "Leandro", "Marcelo", "Nícolas", "Paulo", "Ricardo", "Sebastião", "Tomás", "Vítor", "Wellington", "Álvaro",
    "Adrião", "Benedito", "Cláudio", "Diógenes", "Émerson", "Francisco", "Germano", "Hélio", "Inácio", "Jônatas",
]
SURNAMES: list[str] = [
    "Gonçalves", "Conceição", "Araújo", "Simões", "Magalhães", "Assunção", "Guimarães", "Brandão", "Falcão", "Romão",
    "Silva", "Santos", "Oliveira", "Souza", "Pereira", "Lima", "Carvalho", "Ferreira", "Rodrigues", "Almeida",
    "Costa", "Gomes", "Ribeiro", "Martins", "Rocha", "Sá", "Lopes", "Mendonça", "Cardoso", "Barbosa",
    "Nascimento", "Fonseca", "Mourão", "Leitão", "Damião", "Estêvez", "Antunes", "Patrício", "Jordão", "Salomão",
    "Teixeira", "Vieira", "Monteiro", "Moraes", "Nogueira", "Peixoto", "Queiroz", "Tavares", "Xavier", "Macêdo",
    "D'Ávila", "Sant'Anna", "Dória", "Galvão", "Cunha", "Pimentel", "Aragão", "Bastos", "Câmara", "Frazão",
]
# Surname particles: "Maria da Conceição", "João de Araújo".
PARTICLES: list[str] = ["da", "de"]

EMAIL_DOMAINS: list[str] = ["gmail.com", "hotmail.com", "outlook.com", "yahoo.com.br", "uol.com.br", "bol.com.br"]

INSTITUTION_NAMES: list[str] = [
    "Colégio Conceição", "Faculdade São João", "Escola Técnica Gonçalves Dias", "Instituto Ângela Guimarães",
    "Universidade Araújo Magalhães", "Centro Educacional Simões", "Colégio Brandão", "Academia Falcão de Ensino",
    "Escola Politécnica Assunção", "Instituto Educacional Mourão", "Faculdade Integrada Jordão", "Colégio Estêvão Leitão",
    "Centro Universitário Paraná", "Escola de Gestão Conceição", "Instituto São Sebastião", "Faculdade de Saúde Inês Romão",
    "Colégio Piauí", "Escola Técnica do Maranhão", "Instituto Tecnológico Goiás", "Centro de Formação Ceará",
    "Universidade Livre de São Paulo", "Colégio Santa Mônica", "Faculdade Nossa Senhora da Glória", "Escola Municipal Cecília Meireles",
]
BIG_INSTITUTION_NAME = "Rede Ágora de Educação Corporativa"

SCHOOL_PREFIXES: list[str] = ["Escola", "Colégio", "Unidade", "Campus", "Polo", "Núcleo"]
SCHOOL_PATRONS: list[str] = [
    "São José", "Conceição Aparecida", "Santa Luzia", "Monteiro Lobato", "Cecília Meireles", "Machado de Assis",
    "Vila Mariana", "Jardim Paulistano", "Boa Viagem", "Ipanema", "Savassi", "Moinhos de Vento", "Água Verde",
    "Graças", "Icaraí", "Itaim Bibi", "Pituba", "Aldeota", "Asa Norte", "Petrópolis", "Tatuapé", "Ribeirão Preto",
]

STORYBOARD_TOPICS: list[str] = [
    "Boas-vindas à Plataforma", "Segurança do Trabalho", "Atendimento ao Cliente", "Integração de Novos Colaboradores",
    "Ética e Compliance", "Gestão do Tempo", "Comunicação Não Violenta", "Prevenção de Acidentes", "Inteligência Emocional",
    "Liderança Situacional", "Saúde Mental no Trabalho", "Educação Financeira", "Introdução à LGPD", "Diversidade e Inclusão",
    "Primeiros Socorros", "Sustentabilidade na Prática", "Excelência no Atendimento", "Negociação e Persuasão",
    "Gestão de Conflitos", "Inovação e Criatividade", "Feedback Construtivo", "Trabalho em Equipe", "Higiene e Saúde",
    "Orientação Vocacional", "Segurança da Informação", "Hábitos de Estudo", "Cidadania Digital", "Matemática Básica",
]

COURSE_TOPICS: list[str] = [
    "Gestão de Projetos", "Excel Avançado", "Português para Concursos", "Matemática Financeira", "Programação em Python",
    "Liderança e Motivação", "Marketing Digital", "Contabilidade Básica", "Libras", "Redação Científica",
    "Inglês Instrumental", "Espanhol para Negócios", "Análise de Dados", "Oratória", "Logística e Distribuição",
    "Direito do Consumidor", "Nutrição e Bem-estar", "Fotografia", "Empreendedorismo", "Atendimento Humanizado",
    "Química Geral", "Física Moderna", "História do Brasil", "Geografia Econômica", "Biologia Celular",
    "Filosofia e Ética", "Sociologia Urbana", "Educação Ambiental", "Psicologia da Aprendizagem", "Didática",
]
COURSE_LEVELS: list[str] = ["Básico", "Intermediário", "Avançado", "Módulo I", "Módulo II", "Trilha Prática"]

# (subject, feminine?) -> "Introdução à Física" / "Introdução ao Inglês"
LIBRARY_SUBJECTS: list[tuple[str, bool]] = [
    ("Matemática", True), ("Língua Portuguesa", True), ("Física", True), ("Química", True), ("História", True),
    ("Geografia", True), ("Educação Física", True), ("Programação", True), ("Redação", True), ("Biologia", True),
    ("Filosofia", True), ("Sociologia", True), ("Inglês", False), ("Artes Visuais", False), ("Música", True),
    ("Álgebra Linear", True), ("Geometria", True), ("Orientação Profissional", True), ("Espanhol", False),
    ("Cálculo", False), ("Eletrônica", True), ("Ciências da Natureza", False),
]
LIBRARY_PREFIXES: list[str] = [
    "Introdução", "Fundamentos de", "Exercícios de", "Revisão de", "Apostila de", "Simulado de",
    "Videoaula de", "Guia prático de", "Resumo de", "Atividade de",
]
LIBRARY_TAGS: list[str] = [
    "revisão", "enem", "vestibular", "onboarding", "guia", "exercícios", "vídeo", "leitura", "prática",
    "avaliação", "introdução", "aprofundamento",
]
LIBRARY_SOURCES: list[str] = ["YouTube", "Acervo próprio", "Khan Academy", "Editora Ática", "Domínio público", "Vimeo"]


def library_title_stems() -> list[str]:
    """Every prefix x subject combination, with the right contraction (à / ao)."""
    stems: list[str] = []
    for prefix in LIBRARY_PREFIXES:
        for subject, feminine in LIBRARY_SUBJECTS:
            if prefix == "Introdução":
                stems.append(f"Introdução {'à' if feminine else 'ao'} {subject}")
            else:
                stems.append(f"{prefix} {subject}")
    return stems


def ascii_slug(text: str, sep: str = ".") -> str:
    """'Conceição D'Ávila' -> 'conceicao.davila' (for e-mails and subdomains)."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    plain = "".join(ch if ch.isalnum() or ch == " " else "" for ch in plain)
    return sep.join(plain.split())
